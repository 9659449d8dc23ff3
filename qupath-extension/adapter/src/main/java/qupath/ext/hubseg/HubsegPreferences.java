package qupath.ext.hubseg;

import javafx.beans.property.StringProperty;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.lib.gui.prefs.PathPrefs;

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
     * Validates and stores new settings. Headless: showing or hiding uncertain objects in the viewers is the
     * settings dialog's job ({@link Commands#applyHideUncertain}).
     */
    public static void set(HubsegSettings settings) {
        settings.validate().toMap().forEach((key, value) -> PROPERTIES.get(key).set(value));
    }
}
