/*
 * workers/cpu.c — CPU lists, pinning and NUMA nodes (see cpu.h).
 */
#include "workers/cpu.h"

#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>

int cpu_affinity_list(int *cpus, int max)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return -errno;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    if (n == 0)
        return -ENOENT;
    return n;
}

int cpu_pin_self(int cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE)
        return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int cpu_node(int cpu)
{
    static int avail = -2;
    /* A benign race: every thread computes the same answer. */
    int a = __atomic_load_n(&avail, __ATOMIC_RELAXED);
    if (a == -2) {
        a = numa_available();
        __atomic_store_n(&avail, a, __ATOMIC_RELAXED);
    }
    if (a < 0)
        return -1;
    int node = numa_node_of_cpu(cpu);
    return node < 0 ? -1 : node;
}
