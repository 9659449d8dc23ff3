package qupath.ext.hubseg;

import javafx.application.Platform;
import javafx.beans.property.StringProperty;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.lib.gui.QuPathGUI;
import qupath.lib.gui.prefs.PathPrefs;
import qupath.lib.gui.viewer.OverlayOptions;
import qupath.lib.objects.classes.PathClass;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The settings as QuPath persistent preferences: one string preference per key of
 * {@link HubsegSettings#toMap()} ({@code PathPrefs.createPersistentPreference(String, String)}, QuPath 0.6/0.7,
 * as used by QuPath's InstanSeg extension), including {@code hubseg.hideUncertain} ("Hide uncertain objects").
 */
public final class HubsegPreferences {

    private static final Map<String, StringProperty> PROPERTIES = new LinkedHashMap<>();

    static {
        HubsegSettings.defaults().toMap().forEach((key, defaultValue) ->
                PROPERTIES.put(key, PathPrefs.createPersistentPreference(key, defaultValue)));
    }

    private HubsegPreferences() {
    }

    /** The current settings (invalid stored values raise a readable {@code HubsegException}). */
    public static HubsegSettings get() {
        Map<String, String> map = new LinkedHashMap<>();
        PROPERTIES.forEach((key, property) -> map.put(key, property.get()));
        return HubsegSettings.fromMap(map);
    }

    /**
     * Validates and stores new settings; a change of "Hide uncertain objects" is applied to the viewers at once
     * (only a change, so a class the user hid or showed in QuPath's own class list is otherwise left alone).
     */
    public static void set(HubsegSettings settings) {
        boolean wasHidden = Boolean.parseBoolean(PROPERTIES.get(HubsegSettings.KEY_HIDE_UNCERTAIN).get());
        settings.validate().toMap().forEach((key, value) -> PROPERTIES.get(key).set(value));
        if (settings.hideUncertain() != wasHidden) {
            applyHideUncertain(QuPathGUI.getInstance(), settings.hideUncertain());
        }
    }

    /**
     * Hides (or shows again) class {@code Glomerulus (uncertain)} in every viewer; display only, no object is
     * touched. Uses QuPath's global overlay options, {@code QuPathGUI.getOverlayOptions()}, and
     * {@code qupath.lib.gui.viewer.OverlayOptions.setPathClassHidden(PathClass, boolean)} (qupath-gui-fx, QuPath 0.6
     * and 0.7). Since 0.6 that class set is read through {@code OverlayOptions.ClassVisibilityMode}: in the default
     * {@code HIDE_SELECTED} it lists hidden classes; in {@code SHOW_SELECTED} (the user chose "hide by default") it
     * lists shown classes, so hiding there means taking the class out and showing is left to the user's list.
     * The hidden-class set is not persistent in QuPath, so the extension applies the setting again at start-up.
     */
    static void applyHideUncertain(QuPathGUI qupath, boolean hide) {
        OverlayOptions options = qupath == null ? null : qupath.getOverlayOptions();
        if (options == null) {
            return;
        }
        Runnable apply = () -> {
            PathClass uncertain = PathClass.fromString(HubsegObjects.CLASS_UNCERTAIN);
            if (options.getSelectedClassVisibilityMode() == OverlayOptions.ClassVisibilityMode.SHOW_SELECTED) {
                if (hide) {
                    options.selectedClassesProperty().remove(uncertain);
                }
            } else {
                options.setPathClassHidden(uncertain, hide);
            }
        };
        if (Platform.isFxApplicationThread()) {
            apply.run();
        } else {
            Platform.runLater(apply); // overlay options drive viewer repaints: change them on the FX thread
        }
    }
}
