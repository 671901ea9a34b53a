/// Enums of the rendezvous schema (PROTOCOL.md §5.1.2). Open: unknown numbers are kept.

/// A peer's NAT type as found by the client's NAT test.
public struct NatType: ProtoEnum {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let unknownNat = NatType(rawValue: 0)
    /// Non-symmetric ("cone") NAT: hole punching can work.
    public static let asymmetric = NatType(rawValue: 1)
    /// Symmetric NAT, or "force relay" when a client sends it.
    public static let symmetric = NatType(rawValue: 2)
    public static let names: [Int32: String] = [0: "UNKNOWN_NAT", 1: "ASYMMETRIC", 2: "SYMMETRIC"]
}

/// The kind of session a controlling client asks for.
public struct ConnType: ProtoEnum {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let defaultConn = ConnType(rawValue: 0)
    public static let fileTransfer = ConnType(rawValue: 1)
    public static let portForward = ConnType(rawValue: 2)
    public static let rdp = ConnType(rawValue: 3)
    public static let viewCamera = ConnType(rawValue: 4)
    public static let terminal = ConnType(rawValue: 5)
    public static let names: [Int32: String] = [
        0: "DEFAULT_CONN", 1: "FILE_TRANSFER", 2: "PORT_FORWARD", 3: "RDP", 4: "VIEW_CAMERA", 5: "TERMINAL",
    ]
}

extension RegisterPkResponse {
    public struct Result: ProtoEnum {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let ok = Result(rawValue: 0)
        public static let uuidMismatch = Result(rawValue: 2)
        public static let idExists = Result(rawValue: 3)
        public static let tooFrequent = Result(rawValue: 4)
        public static let invalidIdFormat = Result(rawValue: 5)
        public static let notSupport = Result(rawValue: 6)
        public static let serverError = Result(rawValue: 7)
        public static let notDeployed = Result(rawValue: 8)
        public static let names: [Int32: String] = [
            0: "OK", 2: "UUID_MISMATCH", 3: "ID_EXISTS", 4: "TOO_FREQUENT", 5: "INVALID_ID_FORMAT",
            6: "NOT_SUPPORT", 7: "SERVER_ERROR", 8: "NOT_DEPLOYED",
        ]
    }
}

extension PunchHoleResponse {
    public struct Failure: ProtoEnum {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let idNotExist = Failure(rawValue: 0)
        public static let offline = Failure(rawValue: 2)
        public static let licenseMismatch = Failure(rawValue: 3)
        public static let licenseOveruse = Failure(rawValue: 4)
        public static let names: [Int32: String] = [0: "ID_NOT_EXIST", 2: "OFFLINE", 3: "LICENSE_MISMATCH", 4: "LICENSE_OVERUSE"]
    }
}
