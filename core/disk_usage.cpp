#include "disk_usage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "error.hpp"

namespace ezio {
namespace {

std::vector<std::string_view> split_ws(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t')
            ++i;
        if (i > start)
            out.push_back(line.substr(start, i - start));
    }
    return out;
}

template <typename F>
void for_each_line(std::string_view text, F&& f) {
    while (!text.empty()) {
        const auto nl = text.find('\n');
        f(text.substr(0, nl));
        if (nl == std::string_view::npos)
            break;
        text.remove_prefix(nl + 1);
    }
}

bool parse_uint(std::string_view s, unsigned& out) {
    if (s.empty())
        return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size();
}

// Reads a whole /proc file; false with `err` set on failure.
bool slurp(const char* path, std::string& out, int& err) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        return false;
    }
    out.clear();
    char buf[16384];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            ::close(fd);
            return false;
        }
        if (n == 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return true;
}

// st_rdev of a path naming a block device, 0 otherwise.
dev_t block_rdev(const std::string& path) {
    if (path.empty() || path[0] != '/')
        return 0;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
        return 0;
    return st.st_rdev;
}

const DiskInfo* find_by_devnum(dev_t dev, const std::map<std::string, DiskInfo>& table) {
    for (const auto& [name, info] : table)
        if (info.devnum == dev)
            return &info;
    return nullptr;
}

const DiskInfo* find(const std::string& name, const std::map<std::string, DiskInfo>& table) {
    auto it = table.find(name);
    return it == table.end() ? nullptr : &it->second;
}

// Whole disks under `d`: its own (itself, or a partition's parent) and, for
// a dm/md device, those under each of its slaves. The dm/md device itself is
// included too, so that a second LV of the same stack is recognised.
void disks_below_rec(const DiskInfo& d, const std::map<std::string, DiskInfo>& table,
                     std::set<std::string>& seen, std::set<std::string>& out) {
    if (!seen.insert(d.name).second)
        return;
    for (const auto& s : d.slaves)
        if (const DiskInfo* sd = find(s, table))
            disks_below_rec(*sd, table, seen, out);
    out.insert(d.whole_disk());
}

// The device, its partitions (for a disk), and everything stacked on any of
// them (holders/, recursively).
std::vector<const DiskInfo*> stack_above(const DiskInfo& disk,
                                         const std::map<std::string, DiskInfo>& table) {
    std::vector<const DiskInfo*> out;
    std::set<std::string> seen;
    std::vector<const DiskInfo*> todo{&disk};
    if (!disk.is_partition)
        for (const auto& p : disk.partitions)
            if (const DiskInfo* pd = find(p, table))
                todo.push_back(pd);
    while (!todo.empty()) {
        const DiskInfo* d = todo.back();
        todo.pop_back();
        if (!seen.insert(d->name).second)
            continue;
        out.push_back(d);
        for (const auto& h : d->holders)
            if (const DiskInfo* hd = find(h, table))
                todo.push_back(hd);
    }
    return out;
}

void add_mounts(const std::vector<MountEntry>& entries, std::vector<SystemUsage::Mounted>& out) {
    for (const auto& e : entries) {
        const dev_t by_num = e.major != 0 ? makedev(e.major, e.minor) : 0;
        if (by_num != 0)
            out.push_back({by_num, e.mount_point});
        const dev_t by_src = block_rdev(e.source);
        if (by_src != 0 && by_src != by_num)
            out.push_back({by_src, e.mount_point});
    }
}

// Devices "/" is mounted from in one namespace: the topmost "/" entry.
void add_root(const std::vector<MountEntry>& entries, std::vector<dev_t>& roots,
              std::string& source) {
    const MountEntry* top = nullptr;
    for (const auto& e : entries)
        if (e.mount_point == "/")
            top = &e;
    if (!top)
        return;
    if (source.empty())
        source = top->source;
    if (top->major != 0)
        roots.push_back(makedev(top->major, top->minor));
    if (dev_t d = block_rdev(top->source))
        roots.push_back(d);
}

}  // namespace

std::string unescape_octal(std::string_view field) {
    const auto is_oct = [](char c) { return c >= '0' && c <= '7'; };
    std::string out;
    out.reserve(field.size());
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size() && is_oct(field[i + 1]) &&
            is_oct(field[i + 2]) && is_oct(field[i + 3])) {
            out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                            (field[i + 3] - '0')));
            i += 3;
            continue;
        }
        out.push_back(field[i]);
    }
    return out;
}

std::string decode_udev_enc(std::string_view value) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '\\' && i + 3 < value.size() && value[i + 1] == 'x' &&
            hex(value[i + 2]) >= 0 && hex(value[i + 3]) >= 0) {
            out.push_back(static_cast<char>(hex(value[i + 2]) * 16 + hex(value[i + 3])));
            i += 3;
            continue;
        }
        out.push_back(value[i]);
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == '\t' || out.back() == '\n'))
        out.pop_back();
    return out;
}

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
    std::vector<MountEntry> out;
    for_each_line(text, [&](std::string_view line) {
        const auto f = split_ws(line);
        // id parent major:minor root mount_point options [optional...] - fstype source superopts
        if (f.size() < 9)
            return;
        std::size_t sep = 6;
        while (sep < f.size() && f[sep] != "-")
            ++sep;
        if (sep + 2 >= f.size())
            return;
        const auto colon = f[2].find(':');
        if (colon == std::string_view::npos)
            return;
        MountEntry e;
        if (!parse_uint(f[2].substr(0, colon), e.major) ||
            !parse_uint(f[2].substr(colon + 1), e.minor))
            return;
        e.root = unescape_octal(f[3]);
        e.mount_point = unescape_octal(f[4]);
        e.fs_type = unescape_octal(f[sep + 1]);
        e.source = unescape_octal(f[sep + 2]);
        out.push_back(std::move(e));
    });
    return out;
}

std::vector<std::string> parse_swaps(std::string_view text) {
    std::vector<std::string> out;
    bool header = true;
    for_each_line(text, [&](std::string_view line) {
        if (header) {
            header = false;
            if (line.starts_with("Filename"))
                return;
        }
        const auto f = split_ws(line);
        if (!f.empty())
            out.push_back(unescape_octal(f[0]));
    });
    return out;
}

std::vector<std::string> split_devlinks(std::string_view devlinks) {
    std::vector<std::string> out;
    for (auto f : split_ws(devlinks))
        out.emplace_back(f);
    return out;
}

bool is_member_fs_type(std::string_view t) {
    return t == "linux_raid_member" || t == "LVM2_member" || t == "LVM1_member" ||
           t == "zfs_member" || t == "bcache" || t == "ceph" ||
           (t.size() > 12 && t.ends_with("_raid_member"));
}

std::set<std::string> disks_below(dev_t dev, const std::map<std::string, DiskInfo>& table) {
    std::set<std::string> out;
    const DiskInfo* d = find_by_devnum(dev, table);
    if (!d)
        return out;
    std::set<std::string> seen;
    disks_below_rec(*d, table, seen, out);
    return out;
}

SystemUsage SystemUsage::read(const std::map<std::string, DiskInfo>& table) {
    SystemUsage u;
    std::string text;
    int err = 0;
    if (!slurp("/proc/self/mountinfo", text, err))
        throw Error(Errc::Failed,
                    std::string("cannot read /proc/self/mountinfo: ") + std::strerror(err));
    const auto own = parse_mountinfo(text);
    if (own.empty())
        throw Error(Errc::Failed, "/proc/self/mountinfo lists no mounts");
    add_mounts(own, u.mounts);
    std::vector<dev_t> roots;
    add_root(own, roots, u.root_source);

    // PID 1's namespace (the host's, when eziod runs with a private one).
    // Not readable without privileges; then only our own namespace counts,
    // and the exclusive-open probe still sees every mount.
    std::string init_text;
    if (slurp("/proc/1/mountinfo", init_text, err) && init_text != text) {
        const auto init = parse_mountinfo(init_text);
        add_mounts(init, u.mounts);
        add_root(init, roots, u.root_source);
    }
    struct stat st {};
    if (::stat("/", &st) == 0 && major(st.st_dev) != 0)
        roots.push_back(st.st_dev);
    for (dev_t r : roots)
        for (auto& d : disks_below(r, table))
            u.system_disks.insert(d);

    if (!slurp("/proc/swaps", text, err))
        throw Error(Errc::Failed, std::string("cannot read /proc/swaps: ") + std::strerror(err));
    for (const auto& name : parse_swaps(text))
        if (dev_t d = block_rdev(name))
            u.swaps.push_back(d);
    return u;
}

std::string DiskUsage::summary() const {
    std::string out;
    for (const std::string* s : {&mounted, &system, &swap, &holders, &member, &exclusive}) {
        if (s->empty())
            continue;
        if (!out.empty())
            out += "; ";
        out += *s;
    }
    return out;
}

int probe_exclusive(const std::string& node) {
    // O_NONBLOCK: do not wait for a medium in a removable drive. O_RDONLY:
    // closing a read-only descriptor does not make udevd's inotify watch
    // synthesize a change event.
    const int fd = ::open(node.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno;
    ::close(fd);
    return 0;
}

DiskUsage assess_usage(const DiskInfo& disk, const std::map<std::string, DiskInfo>& table,
                       const SystemUsage& system, const ExclusiveProbe& probe) {
    DiskUsage u;
    const auto stack = stack_above(disk, table);
    const auto via = [&](const DiskInfo* d) {
        return d->name == disk.name ? disk.name : disk.name + " (through " + d->name + ")";
    };

    for (const DiskInfo* d : stack) {
        for (const auto& m : system.mounts) {
            if (m.dev == d->devnum && d->devnum != 0) {
                u.mounted = d->name == disk.name ? disk.name + " is mounted on " + m.mount_point
                                                 : disk.name + " is in use: " + d->name +
                                                       " is mounted on " + m.mount_point;
                break;
            }
        }
        if (!u.mounted.empty())
            break;
    }

    for (const DiskInfo* d : stack) {
        for (dev_t s : system.swaps) {
            if (s == d->devnum && d->devnum != 0) {
                u.swap = via(d) + " is an active swap device";
                break;
            }
        }
        if (!u.swap.empty())
            break;
    }

    std::set<std::string> under;
    std::set<std::string> seen;
    disks_below_rec(disk, table, seen, under);
    under.insert(disk.whole_disk());
    for (const auto& w : under) {
        if (system.system_disks.count(w)) {
            u.system = (w == disk.name ? disk.name + " holds the running system"
                                       : disk.name + " is on " + w +
                                             ", the disk that holds the running system") +
                       (system.root_source.empty() ? "" : " (/ is " + system.root_source + ")");
            break;
        }
    }

    // Holders, signatures and exclusive claims of what is written over: the
    // device and, for a whole disk, its partitions. What sits higher in the
    // stack is reported through these.
    std::vector<const DiskInfo*> own{&disk};
    if (!disk.is_partition)
        for (const auto& p : disk.partitions)
            if (const DiskInfo* pd = find(p, table))
                own.push_back(pd);

    for (const DiskInfo* d : own) {
        if (d->holders.empty())
            continue;
        std::string list;
        for (const auto& h : d->holders)
            list += (list.empty() ? "" : ", ") + h;
        u.holders = via(d) + " is held by " + list;
        break;
    }
    for (const DiskInfo* d : own) {
        if (is_member_fs_type(d->fs_type)) {
            u.member = via(d) + " is a " + d->fs_type + " (member of an array or volume group)";
            break;
        }
    }
    if (probe) {
        for (const DiskInfo* d : own) {
            if (!d->node.empty() && probe(d->node) == EBUSY) {
                u.exclusive = via(d) + " is opened exclusively by another program";
                break;
            }
        }
    }
    return u;
}

}  // namespace ezio
