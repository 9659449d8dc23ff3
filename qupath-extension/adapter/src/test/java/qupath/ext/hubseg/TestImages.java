package qupath.ext.hubseg;

import ij.ImagePlus;
import ij.io.FileSaver;
import ij.measure.Calibration;
import ij.process.ColorProcessor;
import qupath.imagej.images.servers.ImageJServerBuilder;
import qupath.lib.images.ImageData;
import qupath.lib.images.servers.ImageServer;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Test slides written by ImageJ's own TIFF writer (plain, striped RGB with resolution tags and ImageJ's unit) and
 * opened through QuPath's real ImageJ image server, as QuPath opens such a file.
 */
final class TestImages {

    static final int SIZE = 384;
    /** Disk centres (x, y), radii and colours, like the core tests' slide: dark purple disks on a pale background. */
    static final int[][] DISKS = {{96, 96, 40, 90, 40, 120}, {288, 110, 36, 150, 70, 160}, {180, 280, 44, 60, 20, 90}};

    private TestImages() {
    }

    /** Writes the slide with the given pixel size (µm) and returns the file. */
    static Path writeSlide(Path file, double pixelSizeUm) throws IOException {
        BufferedImage image = new BufferedImage(SIZE, SIZE, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setColor(new Color(235, 235, 235));
        g.fillRect(0, 0, SIZE, SIZE);
        for (int[] d : DISKS) {
            g.setColor(new Color(d[3], d[4], d[5]));
            g.fillOval(d[0] - d[2], d[1] - d[2], 2 * d[2], 2 * d[2]);
        }
        g.dispose();
        ImagePlus imp = new ImagePlus("slide", new ColorProcessor(image));
        Calibration calibration = imp.getCalibration();
        calibration.pixelWidth = pixelSizeUm;
        calibration.pixelHeight = pixelSizeUm;
        calibration.setUnit("micron");
        Files.createDirectories(file.getParent());
        if (!new FileSaver(imp).saveAsTiff(file.toString())) {
            throw new IOException("ImageJ could not write " + file);
        }
        return file;
    }

    /** QuPath's ImageJ server for a file (not the generic provider, so the test does not depend on which image servers an installation has). */
    static ImageServer<BufferedImage> open(Path file) throws IOException {
        ImageServer<BufferedImage> server = new ImageJServerBuilder().buildServer(file.toUri());
        if (server == null) {
            throw new IOException("QuPath's ImageJ server cannot open " + file);
        }
        return server;
    }

    static ImageData<BufferedImage> imageData(Path file) throws IOException {
        return new ImageData<>(open(file));
    }
}
