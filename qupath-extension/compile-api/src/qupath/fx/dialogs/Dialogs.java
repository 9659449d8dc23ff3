// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.fx.dialogs;

public class Dialogs {
    protected Dialogs() {
    }

    public static native boolean showConfirmDialog(String title, String text);

    public static native boolean showYesNoDialog(String title, String text);

    public static native void showInfoNotification(String title, String message);

    public static native void showWarningNotification(String title, String message);
}
