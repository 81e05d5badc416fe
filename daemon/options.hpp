// The a{sv} options of Deploy, Seed and Cancel, turned into engine types in
// this one place (documented in dbus/org.ezio.Ezio1.Manager.xml). Unknown
// keys, wrong variant types and bad values throw
// ezio::Error(Errc::InvalidArgs) naming the key; nothing else in eziod looks
// inside an sdbus::Variant.
#pragma once

#include <map>
#include <string>

#include <sdbus-c++/Types.h>

#include "engine.hpp"

namespace ezio::daemon {

using VariantMap = std::map<std::string, sdbus::Variant>;

struct DeployOptions {
    JobOptions job;
    bool file = false;  // the target is a regular file
};

DeployOptions parse_deploy_options(const VariantMap& options);
JobOptions parse_seed_options(const VariantMap& options);
// No Cancel options exist yet: any key is refused.
void parse_cancel_options(const VariantMap& options);

// The path eziod opens for a Deploy target / Seed source. Bare names are
// device names ("sda1" -> /dev/sda1); anything else must be absolute, since
// eziod's working directory means nothing to the caller. Throws
// ezio::Error(Errc::InvalidTarget).
std::string resolve_deploy_target(const std::string& target, bool file);
std::string resolve_seed_source(const std::string& source);

}  // namespace ezio::daemon
