// What the bus objects need from their owner (Daemon). The objects reach the
// engine only through engine(), and only from method handlers, so the
// owner can create them while the Engine itself is still being constructed
// (an engine that restores jobs from its state directory reports them from
// its constructor).
#pragma once

#include <functional>
#include <vector>

#include <sdbus-c++/Types.h>

#include "engine.hpp"
#include "options.hpp"

namespace ezio::daemon {

class JobHost {
  public:
    virtual ~JobHost() = default;

    virtual Engine& engine() = 0;

    // Runs `start` (which creates a job in the engine and returns its id),
    // makes sure the job is on the bus with `options` as its Options, and
    // returns its path. The engine may report the new job to its observer
    // from inside `start` or later; either way the object carries `options`.
    virtual sdbus::ObjectPath publish_job(VariantMap options,
                                          const std::function<JobId()>& start) = 0;
    // Paths of all jobs on the bus, in creation order.
    virtual std::vector<sdbus::ObjectPath> job_paths() const = 0;
    // Forget job `id` (engine and bus) once the current dispatch is over.
    virtual void remove_job_later(JobId id) = 0;
};

}  // namespace ezio::daemon
