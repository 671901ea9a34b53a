import Workers

/// What a relay worker tells the metrics (HbbrMetrics reads it at scrape time).
extension RelayWorker {
    /// Per tick: this worker's connection, session and pipe levels.
    func publishLevels() {
        counters.set(.connections, connections.count)
        counters.set(.sessions, sessions.count)
        counters.set(.pipesInUse, pool?.inUse ?? 0)
        counters.set(.pipesOpen, pool?.open ?? 0)
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
