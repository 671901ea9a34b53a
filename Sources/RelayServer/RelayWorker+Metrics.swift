import Workers

/// What a relay worker tells the metrics (HbbrMetrics reads it at scrape time).
extension RelayWorker {
    /// Per tick: this worker's connection, session, pipe and copy-buffer levels.
    func publishLevels() {
        counters.set(.connections, connections.count)
        counters.set(.sessions, sessions.count)
        counters.set(.pipesInUse, pool?.inUse ?? 0)
        counters.set(.pipesOpen, pool?.open ?? 0)
        counters.set(.copyBuffersInUse, copyBuffers?.inUse ?? 0)
    }

    /// Books the bytes read before pairing that the session sends first (not in the pumps'
    /// `bytesRead`): sent from user-space buffers, so `copy`, or `framed` for a message relay.
    func countHandedOver(_ a: PairedHalf, _ b: PairedHalf, framed: Bool) {
        var bytes = a.rawBytes.count + b.rawBytes.count
        for m in a.heldMessages { bytes += m.count }
        for m in b.heldMessages { bytes += m.count }
        if bytes > 0 { counters.count(framed ? .bytesFramed : .bytesCopied, UInt64(bytes)) }
    }

    /// Books `delta` newly read bytes of `session` under the way they moved.
    @inline(__always)
    func countRelayed(_ session: RelaySession, _ delta: UInt64) {
        guard let copied = session.bytesCopied else {
            counters.count(.bytesFramed, delta)
            return
        }
        let newlyCopied = copied &- session.copiedBooked
        session.copiedBooked = copied
        counters.count(.bytesCopied, newlyCopied)
        counters.count(.bytesSpliced, delta &- newlyCopied)
    }
}
