import URing
import Workers

/// `--batch-wait` for either server: turns on the workers' batched waits when the kernel can bound
/// them (`IORING_FEAT_MIN_TIMEOUT`, 6.12+) and says so in the log; on an older kernel it logs that
/// the option has no effect.
public enum BatchedWaits {
    /// Completions a busy worker gathers per wake-up (within the batch wait); reaching it ends the
    /// wait early, and a worker that reaped that many waits plainly next time.
    public static let batch = 32

    public static func apply(micros: Int, to configuration: inout WorkerConfiguration) {
        guard micros > 0 else { return }
        guard Ring.kernelSupportsMinWait() else {
            Log.warn("--batch-wait \(micros) has no effect: this kernel lacks IORING_FEAT_MIN_TIMEOUT (6.12+); workers wake per completion")
            return
        }
        configuration.waitBatch = batch
        configuration.waitBatchMicros = UInt32(micros)
        Log.info("Wake-up batching: up to \(batch) completions within \(micros) µs (--batch-wait)")
    }
}
