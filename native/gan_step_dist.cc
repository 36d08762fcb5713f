// The fused step's data-parallel parts (GanCore, group set): the start broadcast and the averaging of
// gradients, as torch.nn.parallel.DistributedDataParallel does them, over dist.h's process group.
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include "gan_core.h"

namespace ltg {

namespace {
// DDP's bucket_cap_mb default: fewer, larger collectives without one huge copy.
constexpr int64_t kBucketBytes = int64_t(25) << 20;

struct Member {
  at::Tensor* t;
  bool replace;  // the result replaces *t (a step's scalar); else it is copied into *t
};

// Runs `collective` over the members packed into flat buckets (one dtype and device each, at most
// kBucketBytes), every bucket queued before any is waited for, then unpacks the results. An NCCL group
// takes only its GPU's tensors: a bucket elsewhere (a CPU step count, say) travels there and back.
void bucketed(const DistGroup& group, const std::vector<Member>& members,
              const std::function<std::function<void()>(at::Tensor&)>& collective) {
  at::NoGradGuard ng;
  struct Bucket {
    std::vector<Member> members;
    at::Tensor flat;
    std::function<void()> wait;
  };
  std::vector<Bucket> buckets;
  int64_t bytes = 0;
  for (const Member& m : members) {
    const at::Tensor& t = *m.t;
    bool fits = !buckets.empty() && buckets.back().members[0].t->scalar_type() == t.scalar_type() &&
                buckets.back().members[0].t->device() == t.device() && bytes + int64_t(t.nbytes()) <= kBucketBytes;
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().members.push_back(m);
    bytes += int64_t(t.nbytes());
  }
  for (Bucket& b : buckets) {
    std::vector<at::Tensor> flat;
    for (const Member& m : b.members) flat.push_back(m.t->reshape({-1}));
    b.flat = at::cat(flat);
    if (group.nccl() && b.flat.device() != group.device()) b.flat = b.flat.to(group.device());
    b.wait = collective(b.flat);
  }
  for (Bucket& b : buckets) {
    b.wait();
    int64_t off = 0;
    for (const Member& m : b.members) {
      int64_t k = m.t->numel();
      at::Tensor part = b.flat.narrow(0, off, k).view(m.t->sizes());
      if (m.replace) *m.t = part.device() == m.t->device() ? part : part.to(m.t->device());
      else m.t->copy_(part);
      off += k;
    }
  }
}
}  // namespace

void GanCore::syncStart() {
  std::vector<at::Tensor> ts = G.tensors();
  for (const auto& t : D.tensors()) ts.push_back(t);
  for (const auto& t : E.tensors()) ts.push_back(t);  // the EMA generator (spec.ema) starts from rank 0's too
  for (const Optimizer* o : {optG.get(), optD.get()})
    for (const auto& t : o->stateTensors()) ts.push_back(t);
  int64_t numel = 0;
  for (const auto& t : ts) numel += t.numel();
  // Every rank must hold the same structure, or the broadcast would pair unrelated tensors.
  at::Tensor mine = at::tensor({int64_t(ts.size()), numel}, at::kLong).to(group->device());
  auto all = std::make_shared<std::vector<at::Tensor>>();
  group->allGather(mine, all)();
  for (auto& t : *all) t = t.cpu();
  for (size_t r = 1; r < all->size(); ++r) {
    auto a = (*all)[0].accessor<int64_t, 1>(), b = (*all)[r].accessor<int64_t, 1>();
    TORCH_CHECK(a[0] == b[0] && a[1] == b[1], "data-parallel GanStep: rank ", r, "'s models and optimizer state (", b[0], " tensors, ",
                b[1], " values) differ from rank 0's (", a[0], " tensors, ", a[1],
                " values): every rank must build the same models and load the same checkpoint");
  }
  std::vector<Member> members;
  for (auto& t : ts) members.push_back({&t, false});
  bucketed(*group, members, [&](at::Tensor& flat) { return group->broadcast(flat, 0); });
  synced_ = true;
}

void GanCore::averageGrads(Optimizer& opt, std::vector<at::Tensor*> scalars, const char* lossName) {
  std::vector<Member> members;
  for (const auto& p : opt.params()) {
    at::Tensor& g = p.mutable_grad();
    if (g.defined()) members.push_back({&g, false});
  }
  for (at::Tensor* s : scalars)
    if (s->defined()) members.push_back({s, true});
  bool voting = &opt == optD.get();
  at::Tensor vote;
  if (voting) {
    vote = at::full({}, stopVote_, at::TensorOptions().dtype(dtype).device(device));
    members.push_back({&vote, true});
  }
  try {
    bucketed(*group, members, [&](at::Tensor& flat) { return group->allReduce(flat, "avg"); });
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "data-parallel step ", stepCount_ + 1, ": averaging the ", voting ? "discriminator" : "generator",
                "'s gradients across ", group->worldSize(), " ranks failed on rank ", group->rank(),
                " (did another rank stop or fail?): ", e.what_without_backtrace());
  }
  if (voting) stopAgreed_ = vote.item<double>() > 0;
  // Judged on the means: a non-finite loss on any rank stops every rank before this update.
  if (!scalars.empty() && scalars[0]->defined()) judgeFinite(*scalars[0], lossName);
}

}  // namespace ltg
