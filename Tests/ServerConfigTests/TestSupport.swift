@testable import ServerConfig
import TestSupport

/// Compares entry lists (tuples are not Equatable).
func pairs(_ entries: [(String, String)]?) -> [String]? {
    entries?.map { "\($0.0)=\($0.1)" }
}

/// Settings from the given layers, in the shape upstream would see them.
func settings(environment: [String: String] = [:], dotEnv: [(String, String)] = [],
              configFile: [(String, String)]? = nil, flags: [(String, String)] = []) -> Settings {
    Settings(ConfigSources(environment: environment, dotEnv: dotEnv, configFile: configFile, flags: flags))
}

extension Invocation {
    var options: Options? {
        if case .run(let options) = self { return options }
        return nil
    }
}
