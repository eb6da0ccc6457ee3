// libtailor_mpi.so: the only code that calls Open MPI, loaded by dist/mpi.cpp (dlopen) when a
// launcher started tailor. A plain start never loads it, nor libmpi and its dependencies, so it
// costs nothing there. Plain C entry points: the loader looks each up by name.
#include <mpi.h>

#include <cstdint>
#include <cstdio>

namespace {
MPI_Datatype type_of(int t) { return t == 0 ? MPI_FLOAT : t == 1 ? MPI_DOUBLE : MPI_INT64_T; }
}  // namespace

extern "C" {

int tailor_mpi_init(int* rank, int* size, int* local_size) {
  int provided = 0;
  // Only the main thread calls MPI (OpenMP and the server's threads never do).
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS) return rc;
  // Errors come back as return codes (one line from the caller), not as MPI's abort report.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  // The ranks sharing this machine's memory (and cores), whichever launcher started them.
  *local_size = 1;
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_size(node, local_size);
    MPI_Comm_free(&node);
  }
  return MPI_SUCCESS;
}

void tailor_mpi_finalize() { MPI_Finalize(); }
void tailor_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

void tailor_mpi_error_string(int rc, char* buf, int len) {
  char msg[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(rc, msg, &n) != MPI_SUCCESS) n = 0;
  std::snprintf(buf, static_cast<size_t>(len), "%.*s", n, msg);
}

void tailor_mpi_version(char* buf, int len) {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0;
  MPI_Get_library_version(v, &n);
  std::snprintf(buf, static_cast<size_t>(len), "%.*s", n, v);
}

int tailor_mpi_allreduce_sum(void* data, int count, int type) {
  return MPI_Allreduce(MPI_IN_PLACE, data, count, type_of(type), MPI_SUM, MPI_COMM_WORLD);
}
int tailor_mpi_broadcast(void* data, int count, int type, int root) {
  return MPI_Bcast(data, count, type_of(type), root, MPI_COMM_WORLD);
}
int tailor_mpi_barrier() { return MPI_Barrier(MPI_COMM_WORLD); }

int tailor_mpi_send(const int64_t* values, int count, int dest, int tag) {
  return MPI_Send(values, count, MPI_INT64_T, dest, tag, MPI_COMM_WORLD);
}
// Blocks until a message with `tag` is there; its sender and length.
int tailor_mpi_probe(int tag, int* source, int* count) {
  MPI_Status st;
  const int rc = MPI_Probe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &st);
  if (rc != MPI_SUCCESS) return rc;
  *source = st.MPI_SOURCE;
  return MPI_Get_count(&st, MPI_INT64_T, count);
}
int tailor_mpi_receive(int64_t* values, int count, int source, int tag) {
  return MPI_Recv(values, count, MPI_INT64_T, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}
int tailor_mpi_iprobe(int tag, int* flag) {
  return MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, flag, MPI_STATUS_IGNORE);
}

}  // extern "C"
