// N-API side of dist.h: NativeDistGroup. Joining a group and completing a collective block, so both run
// on libuv's thread pool and resolve a Promise; collectives are queued on the JS thread, in call order.
// An NCCL group's GPU becomes the current CUDA device of the JS thread and the training thread (the two
// that run tensor work), so that 'cuda' there means this rank's GPU.
#include <napi.h>

#include <c10/util/Exception.h>

#include <functional>
#include <memory>

#include "addon_data.h"
#include "bindings.h"
#include "dist.h"
#include "dist_wrap.h"
#include "errors.h"
#include "js_args.h"
#include "tensor_wrap.h"
#include "train_thread.h"

namespace ltg {

namespace {
// Runs `work` off the event loop; `done` makes the Promise's value on the JS thread.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), done_(std::move(done)) {}
  static Napi::Promise run(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done) {
    auto* job = new Job(env, std::move(work), std::move(done));  // N-API owns it: deleted after OnOK/OnError
    Napi::Promise p = job->deferred_.Promise();
    job->Queue();
    return p;
  }
  // On libuv's pool: what it throws is kept (errors.h) and rejects the promise on the JS thread.
  void Execute() override {
    try {
      work_();
    } catch (...) {
      error_ = caughtError();
      SetError(error_.message);
    }
  }
  // After a Worker's terminate() its JS can take neither (node-addon-api's rethrow would abort the process).
  void OnOK() override {
    if (envCanRunJs(Env())) deferred_.Resolve(done_(Env()));
  }
  void OnError(const Napi::Error&) override {
    if (envCanRunJs(Env())) deferred_.Reject(toJsError(Env(), error_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  CaughtError error_;
};

class DistGroupWrap : public Napi::ObjectWrap<DistGroupWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    auto ctor = DefineClass(env, "NativeDistGroup",
                            {StaticMethod<&DistGroupWrap::Connect>("connect"), InstanceMethod<&DistGroupWrap::AllReduce>("allReduce"),
                             InstanceMethod<&DistGroupWrap::Broadcast>("broadcast"), InstanceMethod<&DistGroupWrap::AllGather>("allGather"),
                             InstanceMethod<&DistGroupWrap::Barrier>("barrier"), InstanceMethod<&DistGroupWrap::Rank>("rank"),
                             InstanceMethod<&DistGroupWrap::WorldSize>("worldSize"), InstanceMethod<&DistGroupWrap::Backend>("backend"),
                             InstanceMethod<&DistGroupWrap::Device>("device"), InstanceMethod<&DistGroupWrap::Destroy>("destroy")});
    addonData(env).distGroupCtor = Napi::Persistent(ctor);
    exports.Set("NativeDistGroup", ctor);
  }
  explicit DistGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DistGroupWrap>(info) {}
  const std::shared_ptr<DistGroup>& group() const { return group_; }

 private:
  // connect({ host, port, rank, worldSize, timeoutMs, agentStore, backend, device }) -> Promise<NativeDistGroup>
  // backend 'gloo' (default) or 'nccl'; device: NCCL's GPU, 'cuda:N'.
  static Napi::Value Connect(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      js::Object o = js::Args(info, "initProcessGroup")(0, "options").object();
      DistOptions d;
      d.host = o["host"].string();
      d.port = int(o["port"].integer({1, 65535}));
      d.worldSize = int(o["worldSize"].integer({1, 1 << 20}));
      d.rank = int(o["rank"].integer({0, d.worldSize - 1}));
      d.timeout = std::chrono::milliseconds(o["timeoutMs"].integer({1, int64_t(1) << 40}));
      d.agentStore = o["agentStore"].booleanOr(false);
      d.backend = o["backend"].oneOfOr<std::string>("gloo", {{"gloo", "gloo"}, {"nccl", "nccl"}});
      if (!o["device"].isNullish()) {
        // Read without js::Value::device()'s usability check: checkBackend says first whether NCCL is there at all.
        js::Value dv = o["device"];
        std::string s = dv.string();
        try {
          d.device = c10::Device(s);
        } catch (const c10::Error&) {
          dv.fail("'cpu' or 'cuda:N'");
        }
      }
      // Refused here, before any connection: no NCCL, no GPU.
      checkBackend(d);
      if (d.backend == "nccl") {
        makeCurrentCudaDevice(d.device);
        if (!runOnTrainThread([dev = d.device] { makeCurrentCudaDevice(dev); }))
          throwError(env, "initProcessGroup: a trainEpoch is running on the training thread; join the group before training");
      }
      auto group = std::make_shared<std::shared_ptr<DistGroup>>();
      return Job::run(env, [d, group] { *group = std::make_shared<DistGroup>(d); }, [group](Napi::Env env) -> Napi::Value {
        Napi::Object w = addonData(env).distGroupCtor.New({});
        Unwrap(w)->group_ = *group;
        return w;
      });
    });
  }

  std::shared_ptr<DistGroup> live(Napi::Env env, const char* who) {
    if (!group_) throwError(env, std::string(who) + ": the process group was destroyed (destroyProcessGroup)");
    return group_;
  }

  Napi::Value AllReduce(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      js::Args a(info, "allReduce");
      at::Tensor t = a(0, "tensor").tensor();
      std::string op = a(1, "op").string();
      auto wait = live(env, "allReduce")->allReduce(t, op);
      return Job::run(env, wait, [](Napi::Env env) { return env.Undefined(); });
    });
  }

  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      js::Args a(info, "broadcast");
      at::Tensor t = a(0, "tensor").tensor();
      int src = int(a(1, "src").integer({0, 1 << 20}));
      auto wait = live(env, "broadcast")->broadcast(t, src);
      return Job::run(env, wait, [](Napi::Env env) { return env.Undefined(); });
    });
  }

  Napi::Value AllGather(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      at::Tensor t = js::Args(info, "allGather")(0, "tensor").tensor();
      auto out = std::make_shared<std::vector<at::Tensor>>();
      auto wait = live(env, "allGather")->allGather(t, out);
      return Job::run(env, wait, [out](Napi::Env env) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); ++i) arr.Set(uint32_t(i), TensorWrap::New(env, (*out)[i]));
        return arr;
      });
    });
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      auto wait = live(env, "barrier")->barrier();
      return Job::run(env, wait, [](Napi::Env env) { return env.Undefined(); });
    });
  }

  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), live(info.Env(), "getRank")->rank()); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), live(info.Env(), "getWorldSize")->worldSize());
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), live(info.Env(), "backend")->backend()); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), live(info.Env(), "device")->device().str()); }
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    // Collectives in flight keep what they need alive; NCCL's communicators are shut down now.
    if (group_) group_->shutdown();
    group_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<DistGroup> group_;
};
}  // namespace

std::shared_ptr<DistGroup> distGroupFrom(const js::Value& v) {
  Napi::Env env = v.env();
  const Napi::Value& raw = v.raw();
  if (!raw.IsObject() || !raw.As<Napi::Object>().InstanceOf(addonData(env).distGroupCtor.Value()))
    v.fail("a process group (dist.group(), after dist.initProcessGroup)");
  auto g = DistGroupWrap::Unwrap(raw.As<Napi::Object>())->group();
  if (!g) throwError(env, v.label() + ": the process group was destroyed (destroyProcessGroup)");
  return g;
}

void InitDist(Napi::Env env, Napi::Object exports) { DistGroupWrap::Init(env, exports); }

}  // namespace ltg
