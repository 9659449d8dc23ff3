package qupath.ext.hubseg;

import com.google.gson.JsonObject;
import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.Json;
import qupath.ext.hubseg.core.LabelSetBuilder;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;
import qupath.lib.projects.Project;
import qupath.lib.projects.ProjectImageEntry;
import qupath.lib.roi.interfaces.ROI;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds label sets from the reviewed regions of one image, writes them into the project folder
 * ({@code hubseg/labels/}) and posts them to the server. No UI, so scripts can use it too.
 */
public final class LabelExporter {

    /** File (under hubseg/labels/) listing the server ids of this project's label sets, one per line. */
    static final String IDS_FILE = "server-ids.txt";

    /** One label set ready to send, with its summary for the confirmation dialog. */
    public record Prepared(JsonObject labelSet, LabelSetBuilder.Summary summary) {
    }

    private LabelExporter() {
    }

    /**
     * The regions to export: the selected annotations, or else every annotation detection ran in.
     */
    public static List<PathObject> regions(ImageData<BufferedImage> imageData) {
        List<PathObject> regions = Detector.selectedRegions(imageData);
        if (regions.isEmpty()) {
            for (PathObject p : imageData.getHierarchy().getAnnotationObjects()) {
                if (QuPathObjects.metadata(p).containsKey(HubsegObjects.META_REGION) && p.getROI() != null
                        && p.getROI().isArea()) {
                    regions.add(p);
                }
            }
        }
        return regions;
    }

    /**
     * One label set per image reference (the file path, or the upload a region was detected on).
     *
     * @param includePending count proposals nobody reviewed as glomeruli (else they are "undecided")
     */
    public static List<Prepared> prepare(ImageData<BufferedImage> imageData, List<PathObject> regions,
                                         boolean includePending) {
        if (regions.isEmpty()) {
            throw new HubsegException("No reviewed region: select the annotation(s) you reviewed, or run "
                    + "Detect glomeruli first.");
        }
        double pixelSize = Detector.pixelSizeMicrons(imageData.getServer());
        String localPath = Detector.localFile(imageData.getServer());
        Map<String, List<PathObject>> byImage = new LinkedHashMap<>();
        for (PathObject region : regions) {
            String upload = QuPathObjects.metadata(region).get(Detector.META_UPLOAD);
            String key = upload != null ? "upload:" + upload : localPath != null ? "path:" + localPath : null;
            if (key == null) {
                throw new HubsegException("The server has neither the file nor the pixels of region '"
                        + region.getDisplayedName() + "': run Detect glomeruli in it first.");
            }
            byImage.computeIfAbsent(key, k -> new ArrayList<>()).add(region);
        }
        List<PathObject> candidates = new ArrayList<>(imageData.getHierarchy().getAnnotationObjects());
        candidates.addAll(imageData.getHierarchy().getDetectionObjects());
        List<Prepared> prepared = new ArrayList<>();
        for (Map.Entry<String, List<PathObject>> entry : byImage.entrySet()) {
            LabelSetBuilder builder = new LabelSetBuilder().pixelSizeUm(pixelSize).includePending(includePending);
            String key = entry.getKey();
            if (key.startsWith("upload:")) {
                builder.uploadId(key.substring("upload:".length()));
            } else {
                builder.imagePath(key.substring("path:".length()));
            }
            String model = null;
            for (PathObject region : entry.getValue()) {
                builder.addRegion(QuPathObjects.geometry(region.getROI()));
                model = model != null ? model : QuPathObjects.metadata(region).get(HubsegObjects.META_REGION);
            }
            for (PathObject p : candidates) {
                if (p.getROI() == null || entry.getValue().contains(p)
                        || QuPathObjects.metadata(p).containsKey(HubsegObjects.META_REGION)) {
                    continue;
                }
                if (inside(entry.getValue(), p.getROI())) {
                    builder.addFeature(QuPathObjects.toFeature(p));
                }
            }
            LabelSetBuilder.Result result = builder.model(model).build();
            prepared.add(new Prepared(result.labelSet(), result.summary()));
        }
        return prepared;
    }

    private static boolean inside(List<PathObject> regions, ROI roi) {
        for (PathObject region : regions) {
            if (region.getROI().contains(roi.getCentroidX(), roi.getCentroidY())) {
                return true;
            }
        }
        return false;
    }

    /** The project's {@code hubseg/labels} folder ({@code Project.getPath()} is the .qpproj file). */
    public static Path labelsFolder(Project<BufferedImage> project) {
        if (project == null || project.getPath() == null) {
            throw new HubsegException("Open or create a QuPath project first: label sets are saved in its folder "
                    + "(hubseg/labels).");
        }
        // qupath.lib.projects.Project.getPath(): the project file (project.qpproj) inside the project folder
        return project.getPath().toAbsolutePath().getParent().resolve("hubseg").resolve("labels");
    }

    /** Writes the label set into the project (temporary file + atomic rename) and returns the file. */
    public static Path write(Project<BufferedImage> project, String imageName, JsonObject labelSet) throws IOException {
        Path file = labelsFolder(project).getParent().getParent()
                .resolve(LabelSetBuilder.projectFileName(imageName, Instant.now()));
        Files.createDirectories(file.getParent());
        Path tmp = Files.createTempFile(file.getParent(), ".labelset-", ".tmp");
        Files.writeString(tmp, Json.PRETTY.toJson(labelSet), StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return file;
    }

    /** Posts the label set and records its server id in the project. */
    public static String post(HubsegClient client, Project<BufferedImage> project, JsonObject labelSet) throws IOException {
        String id = client.postLabels(labelSet);
        if (project != null && project.getPath() != null) {
            Path ids = labelsFolder(project).resolve(IDS_FILE);
            Files.createDirectories(ids.getParent());
            Files.writeString(ids, id + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        }
        return id;
    }

    /** Server ids of the label sets exported from this project. */
    public static List<String> projectLabelSetIds(Project<BufferedImage> project) throws IOException {
        Path ids = labelsFolder(project).resolve(IDS_FILE);
        if (!Files.exists(ids)) {
            return List.of();
        }
        return Files.readAllLines(ids, StandardCharsets.UTF_8).stream().map(String::strip).filter(s -> !s.isEmpty())
                .distinct().toList();
    }

    /** The project's images that have no exported label set yet (nobody has reviewed them), whatever their source. */
    static List<ProjectImageEntry<BufferedImage>> unreviewedEntries(Project<BufferedImage> project) throws IOException {
        Path folder = labelsFolder(project);
        List<String> exported = new ArrayList<>();
        if (Files.isDirectory(folder)) {
            try (var files = Files.list(folder)) {
                files.forEach(f -> exported.add(f.getFileName().toString()));
            }
        }
        String stamp = "19700101-000000.json";
        List<ProjectImageEntry<BufferedImage>> entries = new ArrayList<>();
        for (ProjectImageEntry<BufferedImage> entry : project.getImageList()) {
            String name = Path.of(LabelSetBuilder.projectFileName(entry.getImageName(), Instant.EPOCH)).getFileName().toString();
            String prefix = name.substring(0, name.length() - stamp.length());
            if (exported.stream().noneMatch(f -> f.startsWith(prefix) && f.length() == prefix.length() + stamp.length())) {
                entries.add(entry);
            }
        }
        return entries;
    }
}
