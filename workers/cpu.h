/*
 * workers/cpu.h — where workers run: CPU lists, pinning and NUMA nodes.
 *
 * libnuma gives the node of each CPU. Where it is unavailable (numa_available
 * fails: no NUMA support, some containers) every node is reported as -1 and
 * pinning still works through the affinity mask. Pinning that the system
 * refuses (a cpuset that excludes the CPU) is reported, not fatal: the
 * worker runs unpinned.
 */
#ifndef WEFT_WORKERS_CPU_H
#define WEFT_WORKERS_CPU_H

/* The CPUs in the calling process's affinity mask, ascending; returns the
 * count (at least 1) or a negative errno. */
int cpu_affinity_list(int *cpus, int max);

/* Pin the calling thread to cpu. Returns 0 or a negative errno. */
int cpu_pin_self(int cpu);

/* The NUMA node of cpu, or -1 when unknown. */
int cpu_node(int cpu);

/*
 * Run the calling thread on the CPUs of cpus[] that are on `node` (the
 * scheduler balances it among them). 0, -ENOENT when none is, or -errno.
 */
int cpu_bind_node_self(int node, const int *cpus, int ncpus);

/* Prefer `node` for the calling thread's new memory (libnuma); no-op
 * where NUMA is unavailable. */
void cpu_prefer_node(int node);

#endif
