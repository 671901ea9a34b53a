/// The tiny HTTP/1.1 dialect of the metrics endpoint, as pure values: one request per
/// connection, only the request line matters, every response closes the connection.
public enum MetricsHTTP {
    /// Largest request head accepted (request line and headers); larger ones get 431.
    public static let maxRequestBytes = 8192

    /// What the bytes received so far amount to.
    public enum Parse: Equatable, Sendable {
        /// No blank line yet, and still under the size limit.
        case incomplete
        /// A complete head: method and path (query string removed).
        case request(method: String, path: String)
        /// Not an HTTP/1.x request line.
        case malformed
        /// Over `maxRequestBytes` without a complete head.
        case tooLarge
    }

    /// Parses a request head from `bytes`, the start of what the client sent.
    public static func parse(_ bytes: [UInt8]) -> Parse {
        guard let end = headEnd(bytes) else { return bytes.count > maxRequestBytes ? .tooLarge : .incomplete }
        if end > maxRequestBytes { return .tooLarge }
        var lineEnd = 0
        while lineEnd < end && bytes[lineEnd] != UInt8(ascii: "\r") && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
        guard let line = String(validating: bytes[..<lineEnd], as: UTF8.self) else { return .malformed }
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isUppercase && $0.isASCII }),
              parts[1].hasPrefix("/"), parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0" else { return .malformed }
        let target = parts[1]
        let path = target.firstIndex(of: "?").map { target[..<$0] } ?? target
        return .request(method: String(parts[0]), path: String(path))
    }

    /// Index just past the blank line ending the head (`\r\n\r\n`, or bare `\n\n`), if present.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        while i < bytes.count {
            if bytes[i] == lf {
                if i + 1 < bytes.count && bytes[i + 1] == lf { return i + 2 }
                if i + 2 < bytes.count && bytes[i + 1] == cr && bytes[i + 2] == lf { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// A complete response with `Content-Length` and `Connection: close`.
    public static func response(status: Int, contentType: String, body: [UInt8], extraHeaders: [String] = []) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason(status))\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for h in extraHeaders { head += h + "\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// A short plain-text response (the text and a newline).
    public static func text(status: Int, _ text: String, extraHeaders: [String] = []) -> [UInt8] {
        response(status: status, contentType: "text/plain", body: Array((text + "\n").utf8), extraHeaders: extraHeaders)
    }

    /// A JSON response (`application/json`).
    public static func json(status: Int, _ text: String, extraHeaders: [String] = []) -> [UInt8] {
        response(status: status, contentType: "application/json", body: Array((text + "\n").utf8), extraHeaders: extraHeaders)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 431: return "Request Header Fields Too Large"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }

    /// Content type of the Prometheus text exposition format.
    public static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"
}
