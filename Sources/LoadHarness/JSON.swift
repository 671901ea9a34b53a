/// A minimal JSON value with ordered object keys, for `--json` output.
public indirect enum JSON: Sendable {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)
    case array([JSON])
    case object([(String, JSON)])
    case null

    public var text: String {
        var s = ""
        write(to: &s)
        return s
    }

    func write(to s: inout String) {
        switch self {
        case .int(let v): s += String(v)
        case .double(let v):
            if v.isFinite {
                // Six significant decimals are plenty for measurements.
                let r = (v * 1e6).rounded() / 1e6
                s += r == r.rounded() && abs(r) < 1e15 ? String(Int(r)) : String(r)
            } else { s += "null" }
        case .string(let v): Self.quote(v, to: &s)
        case .bool(let v): s += v ? "true" : "false"
        case .null: s += "null"
        case .array(let a):
            s += "["
            for (i, x) in a.enumerated() { if i > 0 { s += "," }; x.write(to: &s) }
            s += "]"
        case .object(let o):
            s += "{"
            for (i, (k, v)) in o.enumerated() {
                if i > 0 { s += "," }
                Self.quote(k, to: &s)
                s += ":"
                v.write(to: &s)
            }
            s += "}"
        }
    }

    static func quote(_ v: String, to s: inout String) {
        s += "\""
        for u in v.unicodeScalars {
            switch u {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    s += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else { s.unicodeScalars.append(u) }
            }
        }
        s += "\""
    }
}
