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

}  // namespace

ManagerAdaptor::ManagerAdaptor(sdbus::IConnection& bus, JobHost& host)
    : AdaptorInterfaces(bus, kManagerPath),
      host_(host),
      bus_driver_(sdbus::createProxy(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus")) {
    registerAdaptor();
}

void ManagerAdaptor::log_request(std::string what) {
    const auto* msg = getObject().getCurrentlyProcessedMessage();
    const std::string sender = msg ? msg->getSender() : "";
    what += " requested by " + (sender.empty() ? std::string("?") : sender);
    if (sender.empty()) {  // a peer-to-peer connection: no bus driver to ask
        log::info(what);
        return;
    }
    try {
        bus_driver_->callMethodAsync("GetConnectionUnixUser")
            .onInterface("org.freedesktop.DBus")
            .withArguments(sender)
            .uponReplyInvoke([what](const sdbus::Error* error, uint32_t uid) {
                // A caller that is gone has no uid any more.
                log::info(error ? what : what + " (uid " + std::to_string(uid) + ")");
            });
    } catch (const sdbus::Error&) {
        log::info(what);
    }
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
        log_request("Deploy onto " + path);
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
        log_request("Seed from " + path);
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
