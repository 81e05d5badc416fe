#include "manager_adaptor.hpp"

#include <span>

#include "dbus_error.hpp"
#include "log.hpp"
#include "options.hpp"

namespace ezio::daemon {
namespace {

std::span<const char> as_chars(const std::vector<uint8_t>& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Who asked, for the log: ":1.42 (uid 1000)".
std::string caller(const sdbus::IObject& object) {
    const auto* msg = object.getCurrentlyProcessedMessage();
    if (!msg)
        return "?";
    std::string who = msg->getSender();
    try {
        who += " (uid " + std::to_string(msg->getCredsUid()) + ")";
    } catch (const sdbus::Error&) {
        // Credentials are best effort: a peer-to-peer bus may not carry them.
    }
    return who;
}

}  // namespace

ManagerAdaptor::ManagerAdaptor(sdbus::IConnection& bus, JobHost& host)
    : AdaptorInterfaces(bus, kManagerPath), host_(host) {
    registerAdaptor();
}

ManagerAdaptor::~ManagerAdaptor() {
    unregisterAdaptor();
}

void ManagerAdaptor::jobs_changed() {
    getObject().emitPropertiesChangedSignal(org::ezio::Ezio1::Manager_adaptor::INTERFACE_NAME,
                                            {"Jobs"});
}

sdbus::ObjectPath ManagerAdaptor::Deploy(const std::vector<uint8_t>& torrent,
                                         const std::string& target,
                                         const std::map<std::string, sdbus::Variant>& options) {
    return dbus_call([&] {
        auto parsed = parse_deploy_options(options);
        auto path = resolve_deploy_target(target, parsed.file);
        log::info("Deploy onto " + path + " requested by " + caller(getObject()));
        return host_.publish_job(options, [&] {
            return host_.engine().deploy(as_chars(torrent), path, parsed.job, parsed.file);
        });
    });
}

sdbus::ObjectPath ManagerAdaptor::Seed(const std::vector<uint8_t>& torrent,
                                       const std::string& source,
                                       const std::map<std::string, sdbus::Variant>& options) {
    return dbus_call([&] {
        auto parsed = parse_seed_options(options);
        auto path = resolve_seed_source(source);
        log::info("Seed from " + path + " requested by " + caller(getObject()));
        return host_.publish_job(
            options, [&] { return host_.engine().seed(as_chars(torrent), path, parsed); });
    });
}

std::vector<sdbus::ObjectPath> ManagerAdaptor::ListJobs() {
    return host_.job_paths();
}

std::string ManagerAdaptor::Version() {
    return EZIO_VERSION;
}

uint32_t ManagerAdaptor::ListenPort() {
    return dbus_call([&] { return static_cast<uint32_t>(host_.engine().listen_port()); });
}

std::vector<sdbus::ObjectPath> ManagerAdaptor::Jobs() {
    return host_.job_paths();
}

}  // namespace ezio::daemon
