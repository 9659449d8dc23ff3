package qupath.ext.hubseg.core;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

/** Minimal multipart/form-data writer (RFC 7578). */
final class Multipart {
    final String boundary = "hubseg-" + UUID.randomUUID();
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    void field(String name, String value) {
        write("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n"
                + "Content-Type: text/plain; charset=UTF-8\r\n\r\n");
        write(value);
        write("\r\n");
    }

    void file(String name, String fileName, String contentType, byte[] data) {
        write("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"; filename=\""
                + fileName.replace("\"", "") + "\"\r\nContent-Type: " + contentType + "\r\n\r\n");
        out.writeBytes(data);
        write("\r\n");
    }

    byte[] finish() {
        write("--" + boundary + "--\r\n");
        return out.toByteArray();
    }

    private void write(String s) {
        out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
    }
}
