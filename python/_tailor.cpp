// tailor._tailor: the Python module's C++ half, over the library (include/tailor/tailor.hpp).
// The Python half (python/tailor/) checks arrays and keywords and lays pictures out as
// (n, channels, rows, cols) uint8; this half moves them into the library with the interpreter's
// lock released while training and predicting, and turns Ctrl-C into KeyboardInterrupt.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <csignal>
#include <cstring>
#include <optional>

#include "tailor/tailor.hpp"

namespace py = pybind11;

namespace {

using Bytes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

// (n, c, h, w) uint8 pictures and their n labels as the library's Images; `what` names them in errors.
tailor::Images to_images(const Bytes& x, const Bytes& y, const char* what) {
  if (x.ndim() != 4) throw py::value_error(std::string(what) + ": expected (n, channels, rows, cols) pictures");
  tailor::Images im;
  im.count = x.shape(0);
  im.channels = static_cast<int>(x.shape(1));
  im.rows = static_cast<int>(x.shape(2));
  im.cols = static_cast<int>(x.shape(3));
  im.pixels.assign(x.data(), x.data() + x.size());
  im.labels.assign(y.data(), y.data() + y.size());
  return im;
}

// A training's data from Python: a directory, or (x_train, y_train, x_test, y_test, classes, source).
tailor::Data to_data(const py::object& data) {
  if (py::isinstance<py::str>(data)) return tailor::Data::from_dir(data.cast<std::string>());
  auto t = data.cast<py::tuple>();
  if (t.size() != 6) throw py::value_error("data: expected a directory or (x_train, y_train, x_test, y_test, classes, source)");
  tailor::Data d = tailor::Data::from_memory(to_images(t[0].cast<Bytes>(), t[1].cast<Bytes>(), "x_train"),
                                             to_images(t[2].cast<Bytes>(), t[3].cast<Bytes>(), "x_test"),
                                             t[4].cast<std::vector<std::string>>());
  d.source = t[5].cast<std::string>();
  return d;
}

py::dict epoch_dict(const tailor::Epoch& e) {
  py::dict d;
  d["epoch"] = e.epoch;
  d["epochs"] = e.epochs;
  d["train_loss"] = e.train_loss;
  d["train_acc"] = e.train_acc;
  d["val_loss"] = e.val_loss;
  d["val_acc"] = e.val_acc;
  d["test_acc"] = e.test_acc;
  d["lr"] = e.lr;
  d["epoch_seconds"] = e.epoch_seconds;
  d["elapsed_seconds"] = e.elapsed_seconds;
  d["images_per_second"] = e.images_per_second;
  return d;
}

// The hooks of one training called from Python: the epoch callback with the lock taken, and
// Ctrl-C seen by the interpreter's own handler (PyErr_CheckSignals, main thread only) at step
// boundaries. A KeyboardInterrupt or a callback's exception is kept and raised once the library
// has stopped the run (resumable).
struct PyHooks {
  py::object callback;
  std::optional<py::error_already_set> error;
  tailor::Hooks hooks;

  explicit PyHooks(py::object cb) : callback(std::move(cb)) {
    if (!callback.is_none())
      hooks.on_epoch = [this](const tailor::Epoch& e) {
        py::gil_scoped_acquire gil;
        try {
          py::object r = callback(epoch_dict(e));
          return r.is_none() || r.cast<bool>();
        } catch (py::error_already_set& err) {
          error.emplace(std::move(err));
          throw tailor::Interrupted(e.epoch, SIGINT, "");
        }
      };
    hooks.poll = [this]() {
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() == 0) return 0;
      error.emplace();  // takes the pending KeyboardInterrupt (or what the handler raised)
      return static_cast<int>(SIGINT);
    };
  }
  // After the library threw Interrupted: what Python should see.
  [[noreturn]] void raise(const tailor::Interrupted& e) {
    if (error) {
      py::error_already_set err = std::move(*error);
      error.reset();
      throw err;
    }
    throw py::value_error(e.what());
  }
};

template <class F>
tailor::Run run_training(PyHooks& h, F f) {
  try {
    py::gil_scoped_release nogil;
    return f(h.hooks);
  } catch (const tailor::Interrupted& e) {
    h.raise(e);
  }
}

py::array_t<uint8_t> planes(const std::vector<uint8_t>& v, const tailor::Images& im) {
  py::array_t<uint8_t> a({static_cast<py::ssize_t>(im.count), static_cast<py::ssize_t>(im.channels),
                          static_cast<py::ssize_t>(im.rows), static_cast<py::ssize_t>(im.cols)});
  std::memcpy(a.mutable_data(), v.data(), v.size());
  return a;
}

Bytes checked_pictures(const tailor::Run& r, const Bytes& x) {
  if (x.ndim() != 4 || x.shape(1) != r.channels() || x.shape(2) != r.rows() || x.shape(3) != r.cols())
    throw py::value_error("x: the model takes pictures of shape (n, " + std::to_string(r.channels()) + ", " +
                          std::to_string(r.rows()) + ", " + std::to_string(r.cols()) + ")");
  return x;
}

}  // namespace

PYBIND11_MODULE(_tailor, m) {
  m.doc() = "tailor's engine (use the `tailor` package, not this module)";
  static py::exception<tailor::Error> error(m, "Error", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tailor::OptionError& e) {
      if (e.unknown) {
        PyErr_SetString(PyExc_TypeError, ("train() got an unexpected keyword argument '" + e.option + "'").c_str());
      } else {
        error(e.what());
      }
    } catch (const tailor::Error& e) {
      error(e.what());
    }
  });

  m.def("version", &tailor::version);
  m.def("train_options", [] {
    py::list out;
    for (const tailor::TrainOption& o : tailor::train_options()) {
      py::dict d;
      d["name"] = o.name;
      d["help"] = o.help;
      d["default"] = o.default_value;
      d["flag"] = o.flag;
      out.append(d);
    }
    return out;
  });
  m.def("read_data", [](const std::string& dir, const std::string& image_size, const std::string& color) {
    tailor::Data d;
    {
      py::gil_scoped_release nogil;
      d = tailor::read_data(dir, image_size, color);
    }
    return py::make_tuple(planes(d.train.pixels, d.train), py::array_t<uint8_t>(d.train.labels.size(), d.train.labels.data()),
                          planes(d.test.pixels, d.test), py::array_t<uint8_t>(d.test.labels.size(), d.test.labels.data()),
                          d.classes, d.source);
  });
  m.def(
      "train",
      [](const py::object& data, const tailor::Options& options, py::object callback) {
        const tailor::Data d = to_data(data);
        PyHooks h(std::move(callback));
        return run_training(h, [&](const tailor::Hooks& hooks) { return tailor::train(d, options, hooks); });
      },
      py::arg("data"), py::arg("options"), py::arg("callback") = py::none());
  m.def(
      "resume",
      [](const std::string& dir, const py::object& data, py::object callback, int threads) {
        const tailor::Data d = to_data(data);
        PyHooks h(std::move(callback));
        return run_training(h, [&](const tailor::Hooks& hooks) { return tailor::resume(dir, d, hooks, threads); });
      },
      py::arg("dir"), py::arg("data"), py::arg("callback") = py::none(), py::arg("threads") = 0);

  m.def(
      "search",
      [](const std::string& space, const tailor::Options& flags) {
        // Ctrl-C as the interpreter sees it, asked from this (the calling) thread: the first
        // stops the search at the epoch boundary, a second at the next step; the outputs are
        // written either way, and then the KeyboardInterrupt is raised.
        std::optional<py::error_already_set> error;
        tailor::SearchSummary r;
        {
          py::gil_scoped_release nogil;
          r = tailor::search(space, flags, [&error]() {
            py::gil_scoped_acquire gil;
            if (PyErr_CheckSignals() == 0) return 0;
            if (error) py::error_already_set discard;  // a second Ctrl-C: the first is raised
            else error.emplace();
            return static_cast<int>(SIGINT);
          });
        }
        if (error) throw std::move(*error);
        py::dict d;
        d["out"] = r.out;
        d["complete"] = r.complete;
        d["timed_out"] = r.timed_out;
        d["trials"] = r.trials;
        d["finished"] = r.finished;
        d["pruned"] = r.pruned;
        d["failed"] = r.failed;
        d["epochs"] = r.epochs;
        d["text"] = r.text;
        return d;
      },
      py::arg("space"), py::arg("flags"));

  py::class_<tailor::Run>(m, "Run")
      .def_static("load", &tailor::Run::load, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("dir", &tailor::Run::dir)
      .def_property_readonly("classes", &tailor::Run::classes)
      .def_property_readonly("shape", [](const tailor::Run& r) { return py::make_tuple(r.channels(), r.rows(), r.cols()); })
      .def_property_readonly("weights", &tailor::Run::weights)
      .def("metrics", [](const tailor::Run& r) {
        py::list out;
        for (const tailor::Epoch& e : r.metrics()) out.append(epoch_dict(e));
        return out;
      })
      .def("summary_json", &tailor::Run::summary_json)
      .def("predict_proba", [](const tailor::Run& r, const Bytes& x) {
        checked_pictures(r, x);
        std::vector<float> p;
        {
          py::gil_scoped_release nogil;
          p = r.predict_proba(x.data(), x.shape(0));
        }
        const py::ssize_t k = static_cast<py::ssize_t>(r.classes().size());
        py::array_t<float> a({static_cast<py::ssize_t>(x.shape(0)), k});
        std::memcpy(a.mutable_data(), p.data(), p.size() * sizeof(float));
        return a;
      })
      .def("predict", [](const tailor::Run& r, const Bytes& x) {
        checked_pictures(r, x);
        std::vector<int> p;
        {
          py::gil_scoped_release nogil;
          p = r.predict(x.data(), x.shape(0));
        }
        const std::vector<int64_t> q(p.begin(), p.end());
        return py::array_t<int64_t>(static_cast<py::ssize_t>(q.size()), q.data());
      })
      .def("evaluate", [](const tailor::Run& r, const Bytes& x, const Bytes& y) {
        const tailor::Images im = to_images(checked_pictures(r, x), y, "x");
        tailor::Evaluation e;
        {
          py::gil_scoped_release nogil;
          e = r.evaluate(im);
        }
        py::dict d;
        d["accuracy"] = e.accuracy;
        d["loss"] = e.loss;
        d["count"] = e.count;
        return d;
      })
      .def("predict_picture",
           [](const tailor::Run& r, const py::bytes& encoded, const std::string& name) {
             const std::string bytes = encoded;
             std::vector<float> p;
             {
               py::gil_scoped_release nogil;
               p = r.predict_picture(bytes, name);
             }
             return py::array_t<float>(static_cast<py::ssize_t>(p.size()), p.data());
           })
      .def("export_onnx", &tailor::Run::export_onnx, py::arg("path"), py::arg("opset") = 13,
           py::call_guard<py::gil_scoped_release>());
}
