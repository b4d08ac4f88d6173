"""The local stage's micro runtime: every deployed service version runs as a real local process.

``LocalRuntime`` implements ``RuntimePort`` and ``RuntimeUsagePort`` over the processes of one machine.
One runtime owns one state directory (``LocalRuntime.shared(clock, state_dir)`` answers the same
instance each time: it owns child processes), laid out as:

``namespaces.json``
    namespaces, quotas and network policies: ``{namespace: {"quotas": {name: [requests, limits]},
    "policies": {name: labels}}}``.
``services.json``
    what runs, rewritten on every change and kept on ``shutdown`` so that ``restore`` relaunches it:
    ``{"format": 1, "proxies": {namespace: port}, "services": [{"namespace", "name", "version",
    "source", "command", "env", "metadata", "secret_names"}]}``. Secret values are never written
    (only their names): ``restore`` asks a callback for them again.
``instances.jsonl``
    one JSON object per line, appended: ``{"event": "start", "instance_id", "namespace", "service",
    "version", "deployment_id", "started_at", "stopped_at": null, "exit_reason": null,
    "exit_code": null, "pid", "process_start"}`` when a process starts, and the same object with
    ``"event": "stop"`` and ``stopped_at``, ``exit_reason`` (``deleted``, ``updated``, ``shutdown``,
    ``namespace_deleted``, ``exited``; ``runtime_crashed``, see "After a crash") and ``exit_code``
    filled when it stops. Exactly one start and at most one stop per ``instance_id`` (a ULID on the
    clock's time). ``instances(namespace)`` merges the two. This is the source of ``service_hours``.
``request_counts.json``
    ``{"format": 2, "counts": {namespace: {service: {hour: requests}}}, "checkpoints": {namespace:
    {"id", "counts": {service: {hour: requests}}}}}``: requests counted by the proxies in each hour
    of the clock, saved every few seconds and on shutdown, kept (also across ``delete_namespace``)
    until collected. Collection is a checkpoint and an acknowledgement (``RuntimeUsagePort``):
    ``checkpoint_requests`` moves what is counted into the namespace's one pending checkpoint and
    saves the file before answering, and answers that same checkpoint again until
    ``ack_requests(id)`` drops it; requests counted meanwhile wait for the next checkpoint.
``logs/<namespace>/<service>.log``
    the stdout and stderr of every version of the service, one line per output line:
    ``<ISO timestamp>\\t<version>\\t<message>``. The runtime's own lines start ``[runtime]``.
``heartbeat``
    the clock's time, rewritten every second while the runtime lives: after a crash, the last time
    the crashed runtime was known alive.
``runtime.lock``
    held (``flock``) by the one runtime that owns the directory and its processes, for its lifetime;
    the kernel releases it when that process dies, however it dies. A second runtime on the same
    directory is refused (``DependencyUnavailableError``) while the first lives.

Every file and directory is created private (files 0600, directories 0700).

After a crash
    A runtime that ends without ``shutdown`` (``kill -9`` of ``make run``) leaves its processes
    running as orphans and their start records open. The next runtime on the directory, once it
    holds the lock and before it starts anything, stops them: a start record without a stop whose
    ``pid`` still runs with the same ``process_start`` (the kernel's start time of the process,
    ``/proc/<pid>/stat`` field 22, or ``ps -o lstart`` without ``/proc``; so a recycled pid is never
    taken for ours) has its process group sent SIGTERM, then SIGKILL after 5 s. Every such record
    gets its stop, ``exit_reason`` ``runtime_crashed`` and ``exit_code`` null, at the crashed
    runtime's last ``heartbeat`` (never before the instance's start): the service was unreachable
    from then on, its proxy having died with that runtime. ``restore`` then starts each recorded
    version afresh, once. Orphans are stopped, not adopted: their output pipes and their proxy died
    with the crashed runtime, and an adopted process could be neither logged nor waited for. (Only
    a group whose leader still runs is signalled: children a service left after its own exit are
    not hunted down.)

Processes
    ``spec.command`` runs without a shell in ``spec.source/metadata["path"]`` in a new session (its
    own process group), with a minimal environment: ``PATH`` of the platform process without the
    platform's own virtualenv, ``HOME`` and ``LANG``, ``PYTHONUNBUFFERED=1``, then ``spec.env``, then
    ``spec.secrets``, then the reserved ``MICRO_NAMESPACE``, ``MICRO_SERVICE``, ``MICRO_VERSION`` and
    ``PORT`` (a service cannot override them). ``PORT`` is a free port the runtime picks (the
    manifest's port, in ``metadata["port"]``, is ignored for binding and answered as
    ``manifest_port``), so two versions run side by side. Nothing of the platform's own environment
    (its credentials, its ``PLATFORM_*``, ``AWS_*``, ``GITHUB_*`` variables, its directories) reaches
    a service. The process runs as the platform's Unix user: what isolates it and what does not is
    in the README ("What the local runtime isolates").

Memory
    ``metadata["memory_mib"]`` is enforced as ``RLIMIT_AS`` (hard and soft) of
    ``memory_mib + 256`` MiB. RLIMIT_AS limits *address space*, not resident memory: an interpreter
    maps shared libraries, thread stacks (8 MiB each) and malloc arenas it never touches, so the
    256 MiB headroom keeps a small service alive while an allocation well past ``memory_mib`` fails
    (Python raises ``MemoryError``, Go and C abort), which ends the process and shows as ``error``.
    With a limit set, ``MALLOC_ARENA_MAX=2`` is added to the environment so glibc does not reserve
    64 MiB of address space per thread. It is a guard against runaway services, not accounting.

Health
    One monitor thread checks every live instance: ``GET http://127.0.0.1:<port><health_path>``
    answering 2xx within 2 s makes it ``running`` (until then ``starting``; without a
    ``health_path`` a TCP connect to the port counts). A process that exits on its own is ``error``
    with ``metadata["error"]`` (``exited with code 1``, ``killed by signal SIGKILL``) and the last
    20 lines of its output in ``metadata["last_output"]``. A ``running`` instance whose check fails
    3 times in a row becomes ``error`` (``unhealthy``) and is left running: it is ``running`` again
    when a check passes. Nothing is restarted automatically; the caller's deadline decides how long
    ``starting`` may last.

Routing
    One reverse proxy per namespace (``proxy.NamespaceProxy``), started with the namespace's first
    service on a port kept in ``services.json`` (the same one after a restart when it is free).
    ``http://<host>:<proxy port>/<service>/<rest>`` goes to the service's newest ``running``
    version (the one started last), so traffic moves to a new version only once it is healthy;
    callers delete the old version themselves. ``metadata["address"]`` is
    ``http://<host>:<proxy port>/<service>``.

Locking: one re-entrant lock guards the state; it is never held while waiting on a process or the
network (launching, stopping and health checks happen outside it).

Modules: ``runtime`` (``LocalRuntime``: the ports, services and routing), ``processes`` (supervision:
launch, output, exit, stop, health checks, orphans), ``state`` (the directory, its lock, and the files
of namespaces, services, heartbeat and logs), ``metering`` (request counts and instance records)."""

from chalicelib.adapters.runtime.local.runtime import LocalRuntime

__all__ = ["LocalRuntime"]
