// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.fx.dialogs;

public class Dialogs {
    protected Dialogs() {
    }

    public static native boolean showConfirmDialog(String title, String text);

    public static native boolean showYesNoDialog(String title, String text);

    public static native void showInfoNotification(String title, String message);

    public static native void showWarningNotification(String title, String message);
}
