package qupath.ext.hubseg;

import javafx.scene.control.MenuItem;
import javafx.scene.control.SeparatorMenuItem;
import qupath.ext.hubseg.core.HubsegException;
import qupath.lib.common.Version;
import qupath.lib.gui.QuPathGUI;
import qupath.lib.gui.extensions.QuPathExtension;

/**
 * Extensions > hubseg: detect glomeruli with a hubseg server, review the uncertain ones, export the corrected
 * labels and train a new model version. Registered in
 * META-INF/services/qupath.lib.gui.extensions.QuPathExtension (as in QuPath's extension template).
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
        // QuPathGUI.getMenu(String, boolean): creates "Extensions > hubseg" (QuPath 0.6/0.7, as in the template)
        var menu = qupath.getMenu("Extensions>" + NAME, true);
        menu.getItems().addAll(
                item("Detect glomeruli", commands::detect),
                item("Review uncertain objects", commands::review),
                item("Export corrected labels", commands::export),
                item("Train new model", commands::train),
                new SeparatorMenuItem(),
                item("Settings", commands::settingsDialog),
                item("Server status", commands::status));
        try {
            // QuPath does not keep hidden classes between sessions; "Hide uncertain objects" is ours to re-apply
            if (HubsegPreferences.get().hideUncertain()) {
                HubsegPreferences.applyHideUncertain(qupath, true);
            }
        } catch (HubsegException e) {
            // an invalid stored setting is reported when a command reads the settings; nothing to hide here
        }
    }

    private static MenuItem item(String text, Runnable action) {
        MenuItem item = new MenuItem(text);
        item.setOnAction(e -> action.run());
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
