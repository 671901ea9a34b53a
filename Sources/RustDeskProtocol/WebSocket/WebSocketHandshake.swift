import Crypto
import FoundationEssentials

/// The server's answers to an upgrade request (RFC 6455 §4.2.2).
public enum WebSocketHandshake {
    /// RFC 6455 §1.3: appended to the client's key before hashing.
    static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)).
    public static func acceptValue(forKey key: String) -> String {
        Data(Insecure.SHA1.hash(data: Array((key + acceptGUID).utf8))).base64EncodedString()
    }

    /// Whether `key` is a valid `Sec-WebSocket-Key`: padded base64 of exactly 16 bytes.
    public static func isValidKey(_ key: String) -> Bool {
        Data(base64Encoded: key)?.count == 16
    }

    /// The `101 Switching Protocols` response accepting `request`. No sub-protocol or extension is
    /// selected. After sending it the connection carries WebSocket frames.
    public static func switchingProtocolsResponse(for request: WebSocketUpgradeRequest) -> [UInt8] {
        Array((
            "HTTP/1.1 101 Switching Protocols\r\n"
            + "Upgrade: websocket\r\n"
            + "Connection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(acceptValue(forKey: request.key))\r\n"
            + "\r\n"
        ).utf8)
    }

    /// The response to any rejected upgrade; the server closes the connection after sending it.
    /// It names the one protocol version spoken, as RFC 6455 §4.4 asks of a server that rejects a
    /// version.
    public static let badRequestResponse: [UInt8] = Array((
        "HTTP/1.1 400 Bad Request\r\n"
        + "Connection: close\r\n"
        + "Content-Length: 0\r\n"
        + "Sec-WebSocket-Version: 13\r\n"
        + "\r\n"
    ).utf8)
}
