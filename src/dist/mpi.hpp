#pragma once
// Open MPI behind one seam: everything else in tailor asks this file about ranks and calls its
// collectives. MPI is initialised only when a launcher started the process (mpirun, or Slurm's
// srun with PMI/PMIx: their environment says so); started plainly, tailor makes no MPI call at
// all and every function here answers as a world of one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tailor::dist {

// Whether the environment shows a launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE), and
// TAILOR_NO_MPI is not set (sweep trials, started by a rank, set it for their children).
bool launched();
// MPI_Init when launched(); returns whether MPI is now in use. Call once, at the start of main.
bool init();
// MPI_Finalize if init() started MPI.
void finalize();
// Ends every rank at once (MPI_Abort) after an error on one; exit(code) without MPI.
[[noreturn]] void abort_all(int code);

int rank();        // 0 without MPI
int size();        // 1 without MPI
int local_size();  // ranks on this machine (sharing its memory), 1 without MPI
std::string backend();  // "Open MPI 4.1.4, 2 ranks" or "none"

// Collectives over every rank (no-ops in a world of one).
void allreduce_sum(float* data, size_t n);
void allreduce_sum(double* data, size_t n);
void allreduce_sum(int64_t* data, size_t n);
void broadcast(float* data, size_t n, int root);
void broadcast(int64_t* data, size_t n, int root);
void barrier();

// Point-to-point, for the sweep's scheduler: a few integers with a tag.
void send(int dest, int tag, const std::vector<int64_t>& values);
// Blocks until a message with `tag` arrives from any rank; returns its sender and values.
int receive(int tag, std::vector<int64_t>& values);
// Whether a message with `tag` is waiting (does not block).
bool message_waiting(int tag);

}  // namespace tailor::dist
