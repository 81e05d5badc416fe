// ezioctl disks: the disks and partitions eziod sees (its
// /org/ezio/Ezio1/disk/NAME objects), and whether each could be a target.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cli_format.hpp"
#include "verbs.hpp"

namespace ezio::cli {
namespace {

std::string text(const nlohmann::json& props, const char* key) {
    auto it = props.find(key);
    return it != props.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool flag(const nlohmann::json& props, const char* key) {
    auto it = props.find(key);
    return it != props.end() && it->is_boolean() && it->get<bool>();
}

std::uint64_t number(const nlohmann::json& props, const char* key) {
    auto it = props.find(key);
    return it != props.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

// "sda2" before "sda10", "nvme0n1" before "nvme1n1": digit runs compare as
// numbers.
bool natural_less(std::string_view a, std::string_view b) {
    std::size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
        const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
        if (da && db) {
            std::size_t ei = i, ej = j;
            while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei])))
                ++ei;
            while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej])))
                ++ej;
            auto na = a.substr(i, ei - i), nb = b.substr(j, ej - j);
            while (na.size() > 1 && na.front() == '0')
                na.remove_prefix(1);
            while (nb.size() > 1 && nb.front() == '0')
                nb.remove_prefix(1);
            if (na.size() != nb.size())
                return na.size() < nb.size();
            if (na != nb)
                return na < nb;
            i = ei;
            j = ej;
        } else {
            if (a[i] != b[j])
                return a[i] < b[j];
            ++i;
            ++j;
        }
    }
    return a.size() - i < b.size() - j;
}

// Whole disks in natural order, each followed by its partitions; partitions
// whose disk is not listed come last.
std::vector<const DiskSnapshot*> ordered(const std::vector<DiskSnapshot>& disks) {
    std::vector<const DiskSnapshot*> whole;
    std::map<std::string, std::vector<const DiskSnapshot*>> parts;  // by parent
    for (const auto& d : disks) {
        if (flag(d.properties, "IsPartition"))
            parts[text(d.properties, "Parent")].push_back(&d);
        else
            whole.push_back(&d);
    }
    const auto by_name = [](const DiskSnapshot* a, const DiskSnapshot* b) {
        return natural_less(text(a->properties, "Name"), text(b->properties, "Name"));
    };
    std::sort(whole.begin(), whole.end(), by_name);
    std::vector<const DiskSnapshot*> out;
    for (const auto* d : whole) {
        out.push_back(d);
        auto it = parts.find(text(d->properties, "Name"));
        if (it == parts.end())
            continue;
        std::sort(it->second.begin(), it->second.end(), by_name);
        out.insert(out.end(), it->second.begin(), it->second.end());
        parts.erase(it);
    }
    std::vector<const DiskSnapshot*> orphans;
    for (const auto& [parent, list] : parts)
        orphans.insert(orphans.end(), list.begin(), list.end());
    std::sort(orphans.begin(), orphans.end(), by_name);
    out.insert(out.end(), orphans.begin(), orphans.end());
    return out;
}

std::string state_of(const nlohmann::json& props) {
    if (flag(props, "Ignored"))
        return "ignored";
    if (flag(props, "InUse")) {
        const std::string why = text(props, "InUseReason");
        return why.empty() ? "in use" : "in use: " + why;
    }
    if (flag(props, "ReadOnly"))
        return "read-only";
    if (flag(props, "Eligible"))
        return "eligible";
    return "not eligible";
}

void print_table(const std::vector<const DiskSnapshot*>& disks) {
    struct Row {
        std::string name, size, model, state;
    };
    std::vector<Row> rows;
    std::size_t eligible = 0;
    for (const auto* d : disks) {
        const auto& p = d->properties;
        const std::string name = (flag(p, "IsPartition") ? "  " : "") + text(p, "Name");
        const std::string model = text(p, "Model");
        rows.push_back(
            Row{name, format_bytes(number(p, "Size")), model.empty() ? "-" : model, state_of(p)});
        if (flag(p, "Eligible"))
            ++eligible;
    }
    std::size_t wn = 4, ws = 4, wm = 5;
    for (const auto& r : rows) {
        wn = std::max(wn, r.name.size());
        ws = std::max(ws, r.size.size());
        wm = std::max(wm, r.model.size());
    }
    std::printf("%-*s  %*s  %-*s  %s\n", static_cast<int>(wn), "NAME", static_cast<int>(ws), "SIZE",
                static_cast<int>(wm), "MODEL", "STATE");
    for (const auto& r : rows)
        std::printf("%-*s  %*s  %-*s  %s\n", static_cast<int>(wn), r.name.c_str(),
                    static_cast<int>(ws), r.size.c_str(), static_cast<int>(wm), r.model.c_str(),
                    r.state.c_str());
    std::printf("\n%zu device%s listed, %zu eligible.\n", rows.size(), rows.size() == 1 ? "" : "s",
                eligible);
}

}  // namespace

int run_disks(Context& ctx) {
    const auto& g = ctx.in.global;
    const std::vector<DiskSnapshot> disks = ctx.bus().disks();
    const auto list = ordered(disks);
    if (g.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto* d : list) {
            nlohmann::json item = d->properties;
            item["Path"] = d->path;
            out.push_back(std::move(item));
        }
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    if (g.quiet) {
        for (const auto* d : list)
            std::printf("%s\n", text(d->properties, "Name").c_str());
        return 0;
    }
    if (list.empty()) {
        std::printf("No disks.\n");
        return 0;
    }
    print_table(list);
    return 0;
}

}  // namespace ezio::cli
