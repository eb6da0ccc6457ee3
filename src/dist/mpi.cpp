#include "dist/mpi.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "util/error.hpp"

namespace tailor::dist {

namespace {

bool g_active = false;
int g_rank = 0, g_size = 1, g_local_size = 1;

// libtailor_mpi.so's entry points (src/dist/mpi_plugin.cpp), looked up once MPI is wanted.
struct Plugin {
  int (*init)(int*, int*, int*);
  void (*finalize)();
  void (*abort)(int);
  void (*error_string)(int, char*, int);
  void (*version)(char*, int);
  int (*allreduce_sum)(void*, int, int);
  int (*broadcast)(void*, int, int, int);
  int (*barrier)();
  int (*send)(const int64_t*, int, int, int);
  int (*probe)(int, int*, int*);
  int (*receive)(int64_t*, int, int, int);
  int (*iprobe)(int, int*);
};
Plugin g_mpi{};

bool env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

// Found from the running binary, never by a path into the build tree: next to it (the build
// tree, or a copied build), in the installed layout's lib/tailor beside its bin/ (make install,
// the .deb), and one folder up (the build tree's bench/ programs).
void* open_plugin(std::string& tried) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::string> paths;
  if (!ec)
    for (const char* dir : {".", TAILOR_MPI_PLUGIN_FROM_BIN, ".."})
      paths.push_back((exe.parent_path() / dir / "libtailor_mpi.so").lexically_normal().string());
  // The library (libtailor.so, and the Python module over it) looks beside itself: its lib/tailor
  // is the installed layout's, its own folder the build tree's.
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&open_plugin), &self) != 0 && self.dli_fname != nullptr) {
    const std::filesystem::path lib = std::filesystem::absolute(self.dli_fname, ec);
    if (!ec && lib != exe)
      for (const char* dir : {".", "tailor"})
        paths.push_back((lib.parent_path() / dir / "libtailor_mpi.so").lexically_normal().string());
  }
  for (const std::string& p : paths) {
    if (void* h = dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL)) return h;
    const char* why = dlerror();
    tried += (tried.empty() ? "" : "; ") + p + (why ? std::string(": ") + why : "");
  }
  return nullptr;
}

template <typename F>
void bind(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) throw Error(std::string("libtailor_mpi.so lacks ") + name + " (rebuild tailor)");
}

void check(int rc, const char* what) {
  if (rc != 0) {
    char msg[512];
    g_mpi.error_string(rc, msg, sizeof msg);
    throw Error(std::string("MPI ") + what + " failed: " + msg);
  }
}

// Runs call(pointer, count) over data[0, n) in pieces that MPI's int counts can hold; nothing in
// a world of one.
template <typename T, typename Call>
void in_pieces(T* data, size_t n, const char* what, Call call) {
  if (!g_active || g_size == 1) return;
  constexpr size_t kPiece = size_t{1} << 30;
  for (size_t at = 0; at < n; at += kPiece) check(call(data + at, static_cast<int>(std::min(kPiece, n - at))), what);
}

}  // namespace

bool launched() {
  if (env("TAILOR_NO_MPI")) return false;
  return env("OMPI_COMM_WORLD_SIZE") || env("PMIX_RANK") || env("PMI_SIZE");
}

bool init() {
  if (g_active || !launched()) return g_active;
  std::string tried;
  void* lib = open_plugin(tried);
  if (!lib) throw Error("started by an MPI launcher, but libtailor_mpi.so cannot be loaded (" + tried + ")");
  bind(lib, "tailor_mpi_init", g_mpi.init);
  bind(lib, "tailor_mpi_finalize", g_mpi.finalize);
  bind(lib, "tailor_mpi_abort", g_mpi.abort);
  bind(lib, "tailor_mpi_error_string", g_mpi.error_string);
  bind(lib, "tailor_mpi_version", g_mpi.version);
  bind(lib, "tailor_mpi_allreduce_sum", g_mpi.allreduce_sum);
  bind(lib, "tailor_mpi_broadcast", g_mpi.broadcast);
  bind(lib, "tailor_mpi_barrier", g_mpi.barrier);
  bind(lib, "tailor_mpi_send", g_mpi.send);
  bind(lib, "tailor_mpi_probe", g_mpi.probe);
  bind(lib, "tailor_mpi_receive", g_mpi.receive);
  bind(lib, "tailor_mpi_iprobe", g_mpi.iprobe);
  check(g_mpi.init(&g_rank, &g_size, &g_local_size), "init");
  g_active = true;
  return true;
}

void finalize() {
  if (!g_active) return;
  g_active = false;
  g_mpi.finalize();
}

void abort_all(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (g_active && g_size > 1) g_mpi.abort(code);
  std::exit(code);
}

int rank() { return g_rank; }
int size() { return g_size; }
int local_size() { return g_local_size; }

std::string backend() {
  if (!g_active) return "none";
  char version[512];
  g_mpi.version(version, sizeof version);
  std::string v(version);
  const size_t comma = v.find(',');  // "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"
  if (comma != std::string::npos) v.resize(comma);
  return v + ", " + std::to_string(g_size) + (g_size == 1 ? " rank" : " ranks");
}

// The plugin's data type codes: 0 float, 1 double, 2 int64.
void allreduce_sum(float* data, size_t n) {
  in_pieces(data, n, "allreduce", [](float* p, int c) { return g_mpi.allreduce_sum(p, c, 0); });
}
void allreduce_sum(double* data, size_t n) {
  in_pieces(data, n, "allreduce", [](double* p, int c) { return g_mpi.allreduce_sum(p, c, 1); });
}
void allreduce_sum(int64_t* data, size_t n) {
  in_pieces(data, n, "allreduce", [](int64_t* p, int c) { return g_mpi.allreduce_sum(p, c, 2); });
}
void broadcast(float* data, size_t n, int root) {
  in_pieces(data, n, "broadcast", [root](float* p, int c) { return g_mpi.broadcast(p, c, 0, root); });
}
void broadcast(int64_t* data, size_t n, int root) {
  in_pieces(data, n, "broadcast", [root](int64_t* p, int c) { return g_mpi.broadcast(p, c, 2, root); });
}

void barrier() {
  if (g_active && g_size > 1) check(g_mpi.barrier(), "barrier");
}

void send(int dest, int tag, const std::vector<int64_t>& values) {
  if (!g_active) throw Error("MPI send without MPI");
  check(g_mpi.send(values.data(), static_cast<int>(values.size()), dest, tag), "send");
}

int receive(int tag, std::vector<int64_t>& values) {
  if (!g_active) throw Error("MPI receive without MPI");
  int source = 0, count = 0;
  check(g_mpi.probe(tag, &source, &count), "probe");
  values.resize(static_cast<size_t>(std::max(count, 0)));
  check(g_mpi.receive(values.data(), count, source, tag), "receive");
  return source;
}

bool message_waiting(int tag) {
  if (!g_active) return false;
  int flag = 0;
  check(g_mpi.iprobe(tag, &flag), "probe");
  return flag != 0;
}

}  // namespace tailor::dist
