/*
 * hubseg: export the reviewed labels of every image in the project (Script editor > Run > Run for project).
 * Each label set is written under <project>/hubseg/labels/ and posted to the server; unreviewed proposals
 * inside a reviewed region are marked undecided (training ignores their pixels) unless INCLUDE_PENDING is true.
 */
import qupath.ext.hubseg.Hubseg

boolean INCLUDE_PENDING = false

def imageData = getCurrentImageData()
def name = getProjectEntry().getImageName()
try {
    def ids = Hubseg.exportLabels(getProject(), imageData, name, INCLUDE_PENDING)
    println "${name}: label set(s) ${ids}"
} catch (qupath.ext.hubseg.core.HubsegException e) {
    println "${name}: ${e.message}"
}
