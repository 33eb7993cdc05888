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

int cpu_bind_node_self(int node, const int *cpus, int ncpus)
{
    if (node < 0)
        return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    int n = 0;
    for (int i = 0; i < ncpus; i++)
        if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE && cpu_node(cpus[i]) == node) {
            CPU_SET(cpus[i], &set);
            n++;
        }
    if (n == 0)
        return -ENOENT;
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void cpu_prefer_node(int node)
{
    /*
     * MPOL_PREFERRED for the calling thread: its first touches (the
     * worker's arena, created right after) come from the node while it has
     * memory, and from elsewhere rather than failing when it has not.
     */
    if (node >= 0) /* a node is known only where libnuma works */
        numa_set_preferred(node);
}
