import CURing

/// Test hook: create and destroy a plain ring directly, bypassing the probe's classification.
enum CURingTrial {
    static func tryRing() -> Int32 { CURing_try_ring(8, 0) }
}
