import Glibc

/// `--report FILE.html`: one self-contained page per run — inline SVG drawn here, inline CSS, no
/// scripts, fonts or other resources — that a person reads at a glance: the headline figures, the
/// work done per second, the latency histogram with its percentiles, and the server's CPU per unit
/// of work.
public struct HTMLReport {
    public var title: String
    public var subtitle: String
    /// Headline figures, shown as tiles (label, value).
    public var tiles: [(String, String)] = []
    /// Chart and table sections, already HTML.
    public var sections: [String] = []
    public var ok = true

    public init(title: String, subtitle: String) { self.title = title; self.subtitle = subtitle }

    /// Adds the standard sections of a run: throughput over time, latency, server CPU.
    mutating func addRun(timeline: Timeline?, rateLabel: String, latency: [(String, LatencyRecorder)],
                         usage: ServerUsage?, per units: [(String, Double)]) {
        if let t = timeline, !t.samples.isEmpty {
            sections.append(Self.lineChart(title: "\(rateLabel) per second", unit: "\(t.unit)/s",
                                           series: [(rateLabel, t.samples.map { ($0.second, $0.rate) })],
                                           errors: t.samples.map { ($0.second, Double($0.errors)) }))
        }
        for (name, l) in latency where l.count > 0 { sections.append(Self.histogram(title: name, l)) }
        if let u = usage {
            // One chart per unit (different units never share a scale), split into user and system time.
            for (name, n) in units where n > 0 {
                sections.append(Self.barChart(title: "Server CPU-s per \(name) (pid \(u.pid))",
                                              bars: [("total", u.cpuSeconds / n), ("user", u.userSeconds / n), ("system", u.systemSeconds / n)],
                                              colors: [Self.palette[0], Self.palette[2], Self.palette[3]]))
            }
            tiles.append(("server CPU", "\(fmt(u.cpuSeconds, 2)) s"))
            tiles.append(("server peak RSS", "\(u.peakRSSKiB / 1024) MiB"))
        }
    }

    public var html: String {
        var s = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(Self.escape(title))</title>
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
        h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
        .sub{color:#666;margin-bottom:16px;font-family:monospace;font-size:12px}
        .tiles{display:flex;flex-wrap:wrap;gap:10px}
        .tile{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
        .tile b{display:block;font-size:20px} .tile span{color:#666;font-size:12px}
        .bad{color:#b00020} .good{color:#1b7f3a}
        table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
        th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
        svg text{font:11px system-ui,sans-serif;fill:#444}
        </style></head><body>
        <h1>\(Self.escape(title)) <span class="\(ok ? "good" : "bad")">\(ok ? "✔ ok" : "✘ errors")</span></h1>
        <div class="sub">\(Self.escape(subtitle))</div>
        <div class="tiles">
        """
        for (label, value) in tiles {
            s += "<div class=\"tile\"><b>\(Self.escape(value))</b><span>\(Self.escape(label))</span></div>\n"
        }
        s += "</div>\n"
        for section in sections { s += section + "\n" }
        s += "</body></html>\n"
        return s
    }

    /// Writes the page to `path`.
    public func write(to path: String) throws(HarnessError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HarnessError("cannot write \(path): \(errnoText())") }
        defer { close(fd) }
        var bytes = Array(html.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HarnessError("cannot write \(path): \(errnoText())") }
            off += n
        }
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    // MARK: Charts

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    static let width = 760.0, height = 260.0
    static let left = 64.0, right = 16.0, top = 16.0, bottom = 36.0

    /// A step of 1, 2 or 5 × 10^k giving about `count` intervals up to `maximum`.
    static func niceStep(_ maximum: Double, count: Double = 5) -> Double {
        guard maximum > 0 else { return 1 }
        let raw = maximum / count
        let p = pow(10, floor(log10(raw)))
        for m in [1.0, 2, 5, 10] where m * p >= raw { return m * p }
        return 10 * p
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e6 { return fmt(v / 1e6, 1) + "M" }
        if abs(v) >= 1e4 { return fmt(v / 1e3, 0) + "k" }
        if abs(v) >= 100 { return fmt(v, 0) }
        // Few decimals, trailing zeros dropped: 2.5, 0.25, 12.
        var s = abs(v) >= 1 ? fmt(v, 1) : fmt(v, 3)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }

    /// Axes and grid of a chart of [0, xMax] × [0, yMax]; returns the SVG and the mapping.
    static func frame(xMax: Double, yMax: Double, xLabel: String, yLabel: String) -> (String, (Double) -> Double, (Double) -> Double, Double) {
        let yStep = niceStep(yMax)
        let yTop = max(yStep, ceil(yMax / yStep) * yStep)
        let x = { (v: Double) in left + (width - left - right) * (xMax > 0 ? v / xMax : 0) }
        let y = { (v: Double) in top + (height - top - bottom) * (1 - v / yTop) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"#fafafa\" stroke=\"#ccc\"/>"
        var v = 0.0
        while v <= yTop + yStep / 2 {
            s += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(v))\" y2=\"\(y(v))\" stroke=\"#e4e4e4\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(label(v))</text>"
            v += yStep
        }
        s += "<text x=\"12\" y=\"\(top + (height - top - bottom) / 2)\" transform=\"rotate(-90 12 \(top + (height - top - bottom) / 2))\" text-anchor=\"middle\">\(escape(yLabel))</text>"
        s += "<text x=\"\(left + (width - left - right) / 2)\" y=\"\(height - 4)\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        return (s, x, y, yTop)
    }

    /// Lines over time (seconds on x), with error counts as red ticks when any.
    static func lineChart(title: String, unit: String, series: [(String, [(Double, Double)])], errors: [(Double, Double)] = []) -> String {
        let xMax = max(1, series.flatMap { $0.1.map(\.0) }.max() ?? 1)
        let yMax = series.flatMap { $0.1.map(\.1) }.max() ?? 1
        var (s, x, y, _) = frame(xMax: xMax, yMax: yMax, xLabel: "seconds", yLabel: unit)
        let xStep = niceStep(xMax, count: 8)
        var t = 0.0
        while t <= xMax + xStep / 2 {
            s += "<text x=\"\(x(t))\" y=\"\(height - bottom + 14)\" text-anchor=\"middle\">\(label(t))</text>"
            t += xStep
        }
        for (i, (name, points)) in series.enumerated() {
            let color = palette[i % palette.count]
            let path = points.map { "\(fmt(x($0.0), 1)),\(fmt(y($0.1), 1))" }.joined(separator: " ")
            s += "<polyline class=\"series\" data-name=\"\(escape(name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>"
            for p in points { s += "<circle cx=\"\(fmt(x(p.0), 1))\" cy=\"\(fmt(y(p.1), 1))\" r=\"2.5\" fill=\"\(color)\"><title>\(fmt(p.0, 1)) s: \(label(p.1)) \(escape(unit))</title></circle>" }
            s += "<text x=\"\(width - right - 6)\" y=\"\(top + 14 + 14 * Double(i))\" text-anchor=\"end\" style=\"fill:\(color)\">\(escape(name))</text>"
        }
        for (t, n) in errors where n > 0 {
            s += "<line x1=\"\(x(t))\" x2=\"\(x(t))\" y1=\"\(height - bottom)\" y2=\"\(height - bottom - 8)\" stroke=\"#b00020\" stroke-width=\"2\"><title>\(Int(n)) errors</title></line>"
        }
        s += "</svg>"
        let errorNote = errors.contains { $0.1 > 0 } ? " <span class=\"bad\">(red ticks: seconds with errors)</span>" : ""
        return "<h2>\(escape(title))\(errorNote)</h2>\n" + s
    }

    /// Latency histogram on log2 buckets from 10 µs, with the percentile table.
    static func histogram(title: String, _ l: LatencyRecorder) -> String {
        let buckets = l.buckets
        let yMax = Double(buckets.map(\.count).max() ?? 1)
        var (s, _, y, _) = frame(xMax: 1, yMax: yMax, xLabel: "latency (upper bound of bucket)", yLabel: "count")
        let slot = (width - left - right) / Double(max(1, buckets.count))
        for (i, b) in buckets.enumerated() {
            let x0 = left + slot * Double(i) + 1
            let h = y(0) - y(Double(b.count))
            s += "<rect class=\"bar\" x=\"\(fmt(x0, 1))\" y=\"\(fmt(y(Double(b.count)), 1))\" width=\"\(fmt(max(1, slot - 2), 1))\" height=\"\(fmt(h, 1))\" fill=\"#1f77b4\"><title>≤ \(fmtMicros(b.upTo)): \(b.count)</title></rect>"
            if buckets.count <= 16 || i % 2 == 0 {
                s += "<text x=\"\(fmt(x0 + slot / 2, 1))\" y=\"\(height - bottom + 14)\" text-anchor=\"middle\">\(escape(fmtMicros(b.upTo)))</text>"
            }
        }
        // Percentile markers.
        for (i, p) in [50.0, 99].enumerated() {
            let v = l.percentile(p)
            guard let k = buckets.firstIndex(where: { $0.upTo >= v }) else { continue }
            let xm = left + slot * (Double(k) + 0.5)
            s += "<line x1=\"\(fmt(xm, 1))\" x2=\"\(fmt(xm, 1))\" y1=\"\(top)\" y2=\"\(height - bottom)\" stroke=\"\(palette[1 + i])\" stroke-dasharray=\"4 3\"/>"
            s += "<text x=\"\(fmt(xm + 4, 1))\" y=\"\(top + 12 + 12 * Double(i))\" style=\"fill:\(palette[1 + i])\">p\(Int(p)) \(escape(fmtMicros(v)))</text>"
        }
        s += "</svg>"
        var t = "<table><tr><th>percentile</th>"
        let ps: [(String, UInt64)] = [("p50", l.percentile(50)), ("p90", l.percentile(90)), ("p99", l.percentile(99)),
                                      ("p99.9", l.percentile(99.9)), ("max", l.maximum)]
        for (n, _) in ps { t += "<th>\(n)</th>" }
        t += "<th>count</th></tr><tr><td>latency</td>"
        for (_, v) in ps { t += "<td>\(escape(fmtMicros(v)))</td>" }
        t += "<td>\(l.count)</td></tr></table>"
        return "<h2>\(escape(title))</h2>\n" + s + "\n" + t
    }

    /// Horizontal bars, one per (label, value).
    static func barChart(title: String, bars: [(String, Double)], colors: [String]? = nil) -> String {
        guard !bars.isEmpty else { return "" }
        let rowHeight = 26.0
        let labelWidth = 260.0
        let h = top + rowHeight * Double(bars.count) + 8
        let vMax = max(bars.map(\.1).max() ?? 1, 1e-12)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(width)) \(Int(h))\">"
        for (i, (name, v)) in bars.enumerated() {
            let yb = top + rowHeight * Double(i)
            let w = (width - labelWidth - 110) * v / vMax
            let color = colors.map { $0[i % $0.count] } ?? palette[0]
            s += "<text x=\"\(labelWidth - 8)\" y=\"\(yb + 15)\" text-anchor=\"end\">\(escape(name))</text>"
            s += "<rect class=\"bar\" x=\"\(labelWidth)\" y=\"\(yb + 3)\" width=\"\(fmt(max(1, w), 1))\" height=\"\(rowHeight - 8)\" fill=\"\(color)\"/>"
            s += "<text x=\"\(fmt(labelWidth + max(1, w) + 6, 1))\" y=\"\(yb + 15)\">\(escape(label(v)))</text>"
        }
        s += "</svg>"
        return "<h2>\(escape(title))</h2>\n" + s
    }

    /// A table section.
    static func table(title: String, header: [String], rows: [[String]]) -> String {
        var t = "<h2>\(escape(title))</h2>\n<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
        for r in rows { t += "<tr>" + r.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }
        return t + "</table>"
    }
}

extension LatencyRecorder {
    /// Counts in log2 buckets from 10 µs up to the maximum recorded.
    var buckets: [(upTo: UInt64, count: UInt64)] {
        guard count > 0 else { return [] }
        var out: [(UInt64, UInt64)] = []
        var bound: UInt64 = 10
        var below: UInt64 = 0
        let top = maximum
        while true {
            let c = histogram.count(within: 0...bound)
            out.append((bound, c - below))
            below = c
            if bound >= top { break }
            bound *= 2
        }
        // Drop empty buckets at the low end: they carry no information.
        while out.count > 1 && out[0].1 == 0 { out.removeFirst() }
        return out
    }

    var maximum: UInt64 { count == 0 ? 0 : histogram.max }
}
