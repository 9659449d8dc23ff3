/*
 * hubseg: detect glomeruli in the current image, inside the selected annotations
 * (or the whole image when none is selected). Runs on the script thread, so QuPath stays responsive.
 * Also works in "Run for project" (Script editor > Run > Run for project): then it uses the
 * annotations detection ran in before, or the whole image.
 */
import qupath.ext.hubseg.Hubseg
import qupath.ext.hubseg.Detector

def imageData = getCurrentImageData()
if (imageData == null) {
    println "hubseg: open an image first."
    return
}
def regions = Detector.selectedRegions(imageData)
int n = regions.isEmpty() ? Hubseg.detect(imageData) : Hubseg.detect(imageData, regions)
println "hubseg: ${n} objects detected"
