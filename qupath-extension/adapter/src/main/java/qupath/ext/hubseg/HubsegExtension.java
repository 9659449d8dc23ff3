package qupath.ext.hubseg;

import javafx.scene.control.MenuItem;
import javafx.scene.control.SeparatorMenuItem;
import qupath.ext.hubseg.core.HubsegException;
import qupath.lib.common.Version;
import qupath.lib.gui.QuPathGUI;
import qupath.lib.gui.extensions.QuPathExtension;
import qupath.lib.gui.viewer.QuPathViewer;

import java.util.Objects;

/**
 * Extensions > hubseg: detect glomeruli with a hubseg server, review the uncertain ones, export the corrected
 * labels and train a new model version. Registered in
 * META-INF/services/qupath.lib.gui.extensions.QuPathExtension.
 */
public class HubsegExtension implements QuPathExtension {

    private static final String NAME = "hubseg";
    private boolean installed;

    @Override
    public void installExtension(QuPathGUI qupath) {
        if (installed) {
            return;
        }
        installed = true;
        Commands commands = new Commands(qupath);
        // QuPathGUI.getMenu(String, boolean): creates "Extensions > hubseg" (QuPath 0.6/0.7)
        var menu = qupath.getMenu("Extensions>" + NAME, true);
        menu.getItems().addAll(
                item("Detect glomeruli", commands::detect),
                item("Review uncertain objects", commands::review),
                item("Export corrected labels", commands::export),
                item("Train new model", commands::train),
                item("Adapt to this project", commands::adapt),
                new SeparatorMenuItem(),
                item("Settings", commands::settingsDialog),
                item("Server status", commands::status));
        // scripts' Hubseg.detectProject works on the viewers' copy of an open image, not a second one from disk
        Hubseg.setOpenImages(() -> qupath.getAllViewers().stream().map(QuPathViewer::getImageData)
                .filter(Objects::nonNull).toList());
        try {
            // QuPath does not keep hidden classes between sessions; "Hide uncertain objects" is ours to re-apply
            if (HubsegPreferences.get().hideUncertain()) {
                Commands.applyHideUncertain(qupath, true);
            }
        } catch (HubsegException e) {
            // an invalid stored setting is reported when a command reads the settings; nothing to hide here
        }
    }

    /** A menu item whose failures (any RuntimeException) end in one error dialog and a log line. */
    private static MenuItem item(String text, Runnable action) {
        MenuItem item = new MenuItem(text);
        item.setOnAction(e -> Ui.guarded(action));
        return item;
    }

    @Override
    public String getName() {
        return NAME;
    }

    @Override
    public String getDescription() {
        return "Human-in-the-loop glomeruli segmentation: detect with a hubseg server, review uncertain objects, "
                + "export corrected labels and retrain.";
    }

    @Override
    public Version getQuPathVersion() {
        return Version.parse("v0.6.0");
    }
}
