#include "disk_match.hpp"

#include <fnmatch.h>

#include "error.hpp"

namespace ezio {
namespace {

constexpr std::string_view kByPath = "/dev/disk/by-path/";

bool glob(const std::string& pattern, const std::string& value) {
    return ::fnmatch(pattern.c_str(), value.c_str(), 0) == 0;
}

}  // namespace

void DuplicatorMatch::validate() const {
    if (!property && !by_path)
        throw Error(Errc::InvalidArgs,
                    "a duplicator match needs a udev property (KEY=VALUE) or a by-path slot");
    if (property) {
        const auto eq = property->find('=');
        if (eq == std::string::npos || eq == 0)
            throw Error(Errc::InvalidArgs,
                        "duplicator match property must be KEY=VALUE, not '" + *property + "'");
    }
    if (by_path && by_path->empty())
        throw Error(Errc::InvalidArgs, "duplicator match by-path glob is empty");
    if (min_size && max_size && *min_size > *max_size)
        throw Error(Errc::InvalidArgs, "duplicator match: minimum size exceeds maximum size");
}

bool DuplicatorMatch::matches(const DiskInfo& disk) const {
    try {
        validate();
    } catch (const Error&) {
        return false;
    }
    if (disk.ignore || disk.size == 0)
        return false;
    if (disk.is_partition && !partitions)
        return false;
    if (min_size && disk.size < *min_size)
        return false;
    if (max_size && disk.size > *max_size)
        return false;
    if (property) {
        const auto eq = property->find('=');
        const std::string key = property->substr(0, eq);
        const std::string value = property->substr(eq + 1);
        auto it = disk.properties.find(key);
        if (it == disk.properties.end() || !glob(value, it->second))
            return false;
    }
    if (by_path) {
        bool any = false;
        for (const auto& link : disk.by_path) {
            const std::string tail = link.starts_with(kByPath) ? link.substr(kByPath.size()) : link;
            if (glob(*by_path, link) || glob(*by_path, tail)) {
                any = true;
                break;
            }
        }
        if (!any)
            return false;
    }
    return true;
}

std::string DuplicatorMatch::describe() const {
    std::string out;
    const auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
    if (property)
        add("property " + *property);
    if (by_path)
        add("by-path " + *by_path);
    if (min_size)
        add("size >= " + std::to_string(*min_size));
    if (max_size)
        add("size <= " + std::to_string(*max_size));
    add(partitions ? "disks and partitions" : "whole disks");
    return out;
}

}  // namespace ezio
