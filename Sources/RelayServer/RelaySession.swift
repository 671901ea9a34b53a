import Relay
import RustDeskProtocol
import URing
import Workers

/// How a session's bytes move (PROTOCOL.md §8.4).
enum RelayTransport {
    /// Both halves plain TCP: raw bytes, by splice (`SplicePump`) or copy (`BufferedPump`).
    case raw(Pump)
    /// A WebSocket half: messages re-framed for the other side.
    case framed(FramedRelay)
}

/// One paired session on the worker that owns it: the data path plus the §8.5 limits and
/// accounting. `a` is the half that waited, `b` the second arrival (whose address is the
/// session's address for the blacklist, blocklist and usage table).
final class RelaySession {
    var transport: RelayTransport!
    let usageKey: String
    let ip: IPAddress
    let singleBitsPerSecond: Double
    let limitBitsPerSecond: Double
    var accounting: SessionAccounting
    /// The per-session limiter: SINGLE_BANDWIDTH, or LIMIT_SPEED when low speed.
    var bucket: TokenBucket
    var lowSpeed: Bool
    /// Both directions are paused until the next slice (the session or the worker ran out of
    /// allowance).
    var throttled = false
    /// Bytes read from both halves so far, as last booked.
    var bytesBooked: UInt64 = 0
    /// The copied part of `bytesBooked` (metrics split relayed bytes by how they moved).
    var copiedBooked: UInt64 = 0
    /// Monotonic ns of the latest byte read from either half.
    var lastActivity: UInt64
    var closing = false

    init(usageKey: String, ip: IPAddress, settings: BandwidthSettings, lowSpeed: Bool, now: UInt64) {
        self.usageKey = usageKey
        self.ip = ip
        singleBitsPerSecond = settings.singleMbps * BandwidthSettings.bitsPerMb
        limitBitsPerSecond = settings.limitMbps * BandwidthSettings.bitsPerMb
        accounting = SessionAccounting(settings: settings, nowMs: now / 1_000_000)
        self.lowSpeed = lowSpeed
        bucket = TokenBucket(bitsPerSecond: lowSpeed ? limitBitsPerSecond : singleBitsPerSecond, now: now)
        lastActivity = now
    }

    /// Switches the per-session limiter (downgrade, blacklist added or removed).
    func setLowSpeed(_ low: Bool, now: UInt64) {
        guard low != lowSpeed else { return }
        lowSpeed = low
        bucket = TokenBucket(bitsPerSecond: low ? limitBitsPerSecond : singleBitsPerSecond, now: now)
    }

    // MARK: The transport, whichever it is

    func start(ring: inout Ring) -> PumpEvent {
        switch transport! {
        case .raw(let p): return p.start(ring: &ring)
        case .framed(let f): return f.start(ring: &ring)
        }
    }

    func handle(_ c: Completion, ring: inout Ring) -> PumpEvent {
        switch transport! {
        case .raw(let p): return p.handle(c, ring: &ring)
        case .framed(let f): return f.handle(c, ring: &ring)
        }
    }

    func close(ring: inout Ring) -> PumpEvent {
        closing = true
        switch transport! {
        case .raw(let p): return p.close(ring: &ring)
        case .framed(let f): return f.close(ring: &ring)
        }
    }

    /// Bytes read from both halves (pending bytes handed over at pairing excluded).
    var bytesRead: UInt64 {
        switch transport! {
        case .raw(let p): return p.counters(.aToB).bytesRead &+ p.counters(.bToA).bytesRead
        case .framed(let f): return f.bytesRead(0) &+ f.bytesRead(1)
        }
    }

    /// The part of `bytesRead` that went through user-space buffers: a copy pump's or a splice
    /// pump's fallback reads; nil for a framed (WebSocket) session.
    var bytesCopied: UInt64? {
        switch transport! {
        case .raw(let p): return p.counters(.aToB).bytesCopied &+ p.counters(.bToA).bytesCopied
        case .framed: return nil
        }
    }

    /// Caps each later read of both directions.
    func setMaxChunk(_ bytes: Int) {
        switch transport! {
        case .raw(let p):
            p.setMaxChunk(bytes, for: .aToB)
            p.setMaxChunk(bytes, for: .bToA)
        case .framed(let f):
            f.setMaxChunk(bytes, for: 0)
            f.setMaxChunk(bytes, for: 1)
        }
    }

    func pause(ring: inout Ring) -> PumpEvent {
        throttled = true
        switch transport! {
        case .raw(let p):
            let e = p.pause(.aToB, ring: &ring)
            return e != .none ? e : p.pause(.bToA, ring: &ring)
        case .framed(let f):
            f.pause(0)
            f.pause(1)
            return .none
        }
    }

    func resume(ring: inout Ring) -> PumpEvent {
        throttled = false
        switch transport! {
        case .raw(let p):
            let e = p.resume(.aToB, ring: &ring)
            return e != .none ? e : p.resume(.bToA, ring: &ring)
        case .framed(let f):
            let e = f.resume(0, ring: &ring)
            return e != .none ? e : f.resume(1, ring: &ring)
        }
    }
}
