/// Every way input can be rejected by the protocol layer. Decoders throw these (typed throws) and
/// never trap. The raw values are stable labels for logs and drop counters.
public enum ProtocolError: String, Error, Sendable, Equatable {
    // Protobuf
    case truncated = "truncated"                     // input ended inside a field
    case malformedVarint = "malformed_varint"        // more than 10 bytes, or overflow
    case invalidWireType = "invalid_wire_type"       // wire type 6/7, or a group mismatch
    case nestingTooDeep = "nesting_too_deep"         // more than `ProtoLimits.maxDepth` levels
    case lengthTooLarge = "length_too_large"         // a length-delimited field beyond the input
    case invalidUTF8 = "invalid_utf8"                // a string field that is not UTF-8
    case invalidFieldNumber = "invalid_field_number" // field number 0 or > 2^29-1
    case tooManyRepeated = "too_many_repeated"       // a repeated field beyond `ProtoLimits.maxRepeated`
    case bufferTooSmall = "buffer_too_small"         // encoder output does not fit the caller's buffer

    // Framing
    case frameTooLarge = "frame_too_large"           // header announces more than the configured maximum
    case frameEncodeOverflow = "frame_overflow"      // payload longer than 0x3FFFFFFF

    // WebSocket
    case webSocketBadRequest = "ws_bad_request"
    case webSocketRequestTooLarge = "ws_request_too_large"
    case webSocketProtocolViolation = "ws_protocol_violation"
    case webSocketMessageTooLarge = "ws_message_too_large"

    // Keys
    case malformedKey = "malformed_key"              // wrong length, not base64, or an unusable public key
    case invalidSignature = "invalid_signature"      // a signed message that does not verify
    case decryptionFailed = "decryption_failed"      // a box / secretbox that does not authenticate
}
