#include "bus_client.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include <sdbus-c++/sdbus-c++.h>

#include <ezio-dbus/disk_proxy.hpp>
#include <ezio-dbus/job_proxy.hpp>
#include <ezio-dbus/manager_proxy.hpp>

#include "cli_format.hpp"
#include "error.hpp"

namespace ezio::cli {
namespace {

constexpr const char* kService = "org.ezio.Ezio1";
constexpr const char* kManagerPath = "/org/ezio/Ezio1";
constexpr const char* kPropertiesInterface = "org.freedesktop.DBus.Properties";
constexpr const char* kObjectManagerInterface = "org.freedesktop.DBus.ObjectManager";

using VariantMap = std::map<std::string, sdbus::Variant>;
using InterfaceMap = std::map<std::string, VariantMap>;

// Generated proxies, completed. The Manager proxy needs no signal handlers
// of its own: events come through one match rule (see subscribe()).
class ManagerProxy final : public sdbus::ProxyInterfaces<org::ezio::Ezio1::Manager_proxy> {
  public:
    explicit ManagerProxy(sdbus::IConnection& connection)
        : ProxyInterfaces(connection, kService, kManagerPath) {
        registerProxy();
    }
    ~ManagerProxy() { unregisterProxy(); }

    VariantMap get_all(const std::string& interface) {
        VariantMap props;
        getProxy()
            .callMethod("GetAll")
            .onInterface(kPropertiesInterface)
            .withArguments(interface)
            .storeResultsTo(props);
        return props;
    }

    std::map<sdbus::ObjectPath, InterfaceMap> managed_objects() {
        std::map<sdbus::ObjectPath, InterfaceMap> objects;
        getProxy()
            .callMethod("GetManagedObjects")
            .onInterface(kObjectManagerInterface)
            .storeResultsTo(objects);
        return objects;
    }
};

class JobProxy final : public sdbus::ProxyInterfaces<org::ezio::Ezio1::Job_proxy> {
  public:
    JobProxy(sdbus::IConnection& connection, const std::string& path)
        : ProxyInterfaces(connection, kService, path) {
        registerProxy();
    }
    ~JobProxy() { unregisterProxy(); }

    VariantMap get_all() {
        VariantMap props;
        getProxy()
            .callMethod("GetAll")
            .onInterface(kPropertiesInterface)
            .withArguments(std::string(INTERFACE_NAME))
            .storeResultsTo(props);
        return props;
    }

  private:
    // Completed is delivered through BusClient's match rule instead, which
    // also sees jobs this proxy was not created for.
    void onCompleted(const bool&, const std::string&) override {}
};

nlohmann::json to_json(const sdbus::Variant& v);

nlohmann::json to_json(const VariantMap& map) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : map)
        out[key] = to_json(value);
    return out;
}

nlohmann::json to_json(const sdbus::Variant& v) {
    const std::string type = v.peekValueType();
    if (type == "b")
        return v.get<bool>();
    if (type == "y")
        return v.get<std::uint8_t>();
    if (type == "n")
        return v.get<std::int16_t>();
    if (type == "q")
        return v.get<std::uint16_t>();
    if (type == "i")
        return v.get<std::int32_t>();
    if (type == "u")
        return v.get<std::uint32_t>();
    if (type == "x")
        return v.get<std::int64_t>();
    if (type == "t")
        return v.get<std::uint64_t>();
    if (type == "d")
        return v.get<double>();
    if (type == "s")
        return v.get<std::string>();
    if (type == "o")
        return std::string(v.get<sdbus::ObjectPath>());
    if (type == "g")
        return std::string(v.get<sdbus::Signature>());
    if (type == "as")
        return v.get<std::vector<std::string>>();
    if (type == "ao") {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& p : v.get<std::vector<sdbus::ObjectPath>>())
            out.push_back(std::string(p));
        return out;
    }
    if (type == "ay")
        return v.get<std::vector<std::uint8_t>>();
    if (type == "a{sv}")
        return to_json(v.get<VariantMap>());
    if (type == "v")
        return to_json(v.get<sdbus::Variant>());
    // A type this client does not know yet (a newer daemon): say so rather
    // than guess.
    return nlohmann::json{{"unsupported_dbus_type", type}};
}

VariantMap to_variant_map(const JobRequestOptions& o) {
    VariantMap out;
    if (!o.peers.empty())
        out["peers"] = sdbus::Variant(o.peers);
    if (o.verify)
        out["verify"] = sdbus::Variant(*o.verify);
    if (o.seed_after)
        out["seed_after"] = sdbus::Variant(*o.seed_after);
    if (o.max_upload_rate)
        out["max_upload_rate"] = sdbus::Variant(*o.max_upload_rate);
    if (o.max_download_rate)
        out["max_download_rate"] = sdbus::Variant(*o.max_download_rate);
    if (o.max_connections)
        out["max_connections"] = sdbus::Variant(*o.max_connections);
    if (o.sequential)
        out["sequential"] = sdbus::Variant(*o.sequential);
    if (o.force)
        out["force"] = sdbus::Variant(*o.force);
    if (o.file)
        out["file"] = sdbus::Variant(*o.file);
    return out;
}

bool is_daemon_missing(const std::string& name) {
    return name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
           name == "org.freedesktop.DBus.Error.NameHasNoOwner";
}

// Runs `call`, turning sdbus::Error into ezio::Error. `job_path` (when not
// empty) makes a missing object read "no such job".
template <typename F>
auto guarded(F&& call, const std::string& job_path = {}) {
    try {
        return call();
    } catch (const sdbus::Error& e) {
        const Errc code = errc_from_dbus_name(e.getName());
        if (is_daemon_missing(e.getName()))
            throw Error(code, "eziod is not running (" + e.getMessage() + ")");
        if (code == Errc::NotFound && !job_path.empty()) {
            auto id = job_id_from_path(job_path);
            throw Error(code, "no such job: " + (id ? std::to_string(*id) : job_path));
        }
        throw Error(code, e.getMessage().empty() ? e.getName() : e.getMessage());
    }
}

std::vector<std::uint8_t> to_bytes(const std::vector<char>& data) {
    return std::vector<std::uint8_t>(data.begin(), data.end());
}

}  // namespace

struct BusClient::Impl {
    std::unique_ptr<sdbus::IConnection> connection;
    std::unique_ptr<ManagerProxy> manager;

    std::optional<std::string> watched;  // nullopt: every job
    BusEvents events;
    sdbus::Slot signal_slot;
    sdbus::Slot owner_slot;

    ManagerProxy& mgr() {
        if (!manager)
            manager = guarded([&] { return std::make_unique<ManagerProxy>(*connection); });
        return *manager;
    }

    bool wanted(const std::string& path) const {
        if (watched)
            return path == *watched;
        return job_id_from_path(path).has_value();
    }

    void on_signal(sdbus::Message& msg) {
        const std::string interface = msg.getInterfaceName();
        const std::string member = msg.getMemberName();
        const std::string path = msg.getPath();
        if (interface == kPropertiesInterface && member == "PropertiesChanged") {
            if (!wanted(path) || !events.job_changed)
                return;
            std::string changed_interface;
            VariantMap changed;
            std::vector<std::string> invalidated;
            msg >> changed_interface >> changed >> invalidated;
            if (changed_interface != org::ezio::Ezio1::Job_proxy::INTERFACE_NAME)
                return;
            events.job_changed(path, to_json(changed));
        } else if (interface == org::ezio::Ezio1::Job_proxy::INTERFACE_NAME &&
                   member == "Completed") {
            if (!wanted(path) || !events.job_completed)
                return;
            bool success = false;
            std::string message;
            msg >> success >> message;
            events.job_completed(path, success, message);
        } else if (interface == kObjectManagerInterface && member == "InterfacesAdded") {
            sdbus::ObjectPath object;
            InterfaceMap interfaces;
            msg >> object >> interfaces;
            auto it = interfaces.find(org::ezio::Ezio1::Job_proxy::INTERFACE_NAME);
            if (it == interfaces.end() || !wanted(object) || !events.job_added)
                return;
            events.job_added(JobSnapshot{object, to_json(it->second)});
        } else if (interface == kObjectManagerInterface && member == "InterfacesRemoved") {
            sdbus::ObjectPath object;
            std::vector<std::string> interfaces;
            msg >> object >> interfaces;
            if (std::find(interfaces.begin(), interfaces.end(),
                          org::ezio::Ezio1::Job_proxy::INTERFACE_NAME) == interfaces.end())
                return;
            if (wanted(object) && events.job_removed)
                events.job_removed(object);
        }
    }

    void on_owner_changed(sdbus::Message& msg) {
        std::string name, old_owner, new_owner;
        msg >> name >> old_owner >> new_owner;
        if (name == kService && new_owner.empty() && events.daemon_gone)
            events.daemon_gone();
    }
};

BusClient::BusClient(Bus bus) : impl_(std::make_unique<Impl>()) {
    const char* which = bus == Bus::System ? "system" : "session";
    try {
        impl_->connection = bus == Bus::System ? sdbus::createSystemBusConnection()
                                               : sdbus::createSessionBusConnection();
    } catch (const sdbus::Error& e) {
        throw Error(Errc::Failed,
                    std::string("cannot connect to the ") + which + " bus: " + e.getMessage());
    }
}

BusClient::~BusClient() {
    // Slots and proxies refer to the connection: drop them first.
    impl_->signal_slot.reset();
    impl_->owner_slot.reset();
    impl_->manager.reset();
}

std::string BusClient::deploy(const std::vector<char>& torrent, const std::string& target,
                              const JobRequestOptions& options) {
    auto& m = impl_->mgr();
    return guarded(
        [&] { return std::string(m.Deploy(to_bytes(torrent), target, to_variant_map(options))); });
}

std::string BusClient::seed(const std::vector<char>& torrent, const std::string& source,
                            const JobRequestOptions& options) {
    auto& m = impl_->mgr();
    return guarded(
        [&] { return std::string(m.Seed(to_bytes(torrent), source, to_variant_map(options))); });
}

nlohmann::json BusClient::manager_properties() {
    auto& m = impl_->mgr();
    return guarded(
        [&] { return to_json(m.get_all(org::ezio::Ezio1::Manager_proxy::INTERFACE_NAME)); });
}

std::vector<JobSnapshot> BusClient::jobs() {
    auto& m = impl_->mgr();
    auto objects = guarded([&] { return m.managed_objects(); });
    std::vector<JobSnapshot> out;
    for (const auto& [path, interfaces] : objects) {
        auto it = interfaces.find(org::ezio::Ezio1::Job_proxy::INTERFACE_NAME);
        if (it != interfaces.end())
            out.push_back(JobSnapshot{path, to_json(it->second)});
    }
    std::sort(out.begin(), out.end(), [](const JobSnapshot& a, const JobSnapshot& b) {
        return job_id_from_path(a.path).value_or(0) < job_id_from_path(b.path).value_or(0);
    });
    return out;
}

JobSnapshot BusClient::job(const std::string& path) {
    return guarded(
        [&] {
            JobProxy proxy(*impl_->connection, path);
            return JobSnapshot{path, to_json(proxy.get_all())};
        },
        path);
}

std::vector<DiskSnapshot> BusClient::disks() {
    auto& m = impl_->mgr();
    auto objects = guarded([&] { return m.managed_objects(); });
    std::vector<DiskSnapshot> out;
    for (const auto& [path, interfaces] : objects) {
        auto it = interfaces.find(org::ezio::Ezio1::Disk_proxy::INTERFACE_NAME);
        if (it != interfaces.end())
            out.push_back(DiskSnapshot{path, to_json(it->second)});
    }
    return out;
}

void BusClient::pause(const std::string& path) {
    guarded([&] { JobProxy(*impl_->connection, path).Pause(); }, path);
}

void BusClient::resume(const std::string& path) {
    guarded([&] { JobProxy(*impl_->connection, path).Resume(); }, path);
}

void BusClient::cancel(const std::string& path) {
    guarded([&] { JobProxy(*impl_->connection, path).Cancel({}); }, path);
}

void BusClient::subscribe(std::optional<std::string> path, BusEvents events) {
    impl_->watched = std::move(path);
    impl_->events = std::move(events);
    if (impl_->signal_slot)
        return;
    // One rule for every signal eziod sends below its root: job
    // PropertiesChanged and Completed, and the ObjectManager's
    // InterfacesAdded/Removed. Added synchronously, so it is in force before
    // the caller's next method call.
    const std::string rule = std::string("type='signal',sender='") + kService +
                             "',path_namespace='" + kManagerPath + "'";
    guarded([&] {
        impl_->signal_slot = impl_->connection->addMatch(
            rule, [this](sdbus::Message& msg) { impl_->on_signal(msg); });
        impl_->owner_slot = impl_->connection->addMatch(
            std::string(
                "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                "member='NameOwnerChanged',arg0='") +
                kService + "'",
            [this](sdbus::Message& msg) { impl_->on_owner_changed(msg); });
    });
}

BusClient::RunResult BusClient::run_until(const std::function<bool()>& done, int interrupt_fd,
                                          std::chrono::milliseconds recheck) {
    for (;;) {
        // Drain everything already received (including signals that arrived
        // while a method call was waiting for its reply) before deciding:
        // a state change and the signal that follows it are then seen
        // together.
        guarded([&] {
            while (impl_->connection->processPendingRequest()) {
            }
        });
        if (done())
            return RunResult::Done;

        auto poll_data = guarded([&] { return impl_->connection->getEventLoopPollData(); });
        int timeout = poll_data.getPollTimeout();
        if (recheck.count() >= 0) {
            const int limit = static_cast<int>(recheck.count());
            timeout = timeout < 0 ? limit : std::min(timeout, limit);
        }
        pollfd fds[2] = {{poll_data.fd, poll_data.events, 0}, {interrupt_fd, POLLIN, 0}};
        const nfds_t count = interrupt_fd >= 0 ? 2 : 1;
        int r = ::poll(fds, count, timeout);
        if (r < 0 && errno != EINTR)
            throw Error(Errc::Failed, std::string("poll: ") + std::strerror(errno));
        if (count == 2 && (fds[1].revents & POLLIN))
            return RunResult::Interrupted;
    }
}

}  // namespace ezio::cli
