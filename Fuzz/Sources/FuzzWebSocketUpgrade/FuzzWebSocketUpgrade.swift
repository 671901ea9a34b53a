import ProtocolFuzzing

/// libFuzzer entry point; the target's body and its property live in ProtocolFuzzing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.webSocketUpgrade.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
