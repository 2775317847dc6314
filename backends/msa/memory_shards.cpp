#include "backends/msa/memory_shards.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/model/memory_parallel.h"
#include "core/text.h"

namespace msabench {

namespace {

// Command header broadcast by rank 0: {command, arguments...}.
enum Command : int64_t { kStop = 0, kIndex = 1, kRoute = 2, kFetch = 3 };
constexpr int64_t kHeader = 8;
// Workers idle between commands for as long as rank 0 runs other cells; a dead peer still ends
// every wait at once (its sockets close), so this only bounds a live but stuck peer.
constexpr std::chrono::hours kOpTimeout{24};
// Index outcome of one rank (gather_status), and the tag of a failed rank's message to rank 0.
enum IndexStatus : int64_t { kEncoded = 0, kReused = 1, kFailed = 2 };
constexpr int kMessageTag = 1 << 20;

nlohmann::json bank_options_json(const ShardBankOptions& b) {
  return {{"key_dtype", b.key_dtype ? key_dtype_name(*b.key_dtype) : ""},
          {"corpus_dir", b.corpus_dir},
          {"model", b.fp.model},
          {"tokenizer", b.fp.tokenizer},
          {"corpus", b.fp.corpus},
          {"segment_docs", b.segment_docs},
          {"content_mmap", b.content_mmap}};
}

ShardBankOptions bank_options_from_json(const nlohmann::json& j) {
  ShardBankOptions b;
  const auto dt = j.at("key_dtype").get<std::string>();
  if (!dt.empty()) b.key_dtype = parse_key_dtype(dt);
  b.corpus_dir = j.at("corpus_dir").get<std::string>();
  b.fp.model = j.at("model").get<std::string>();
  b.fp.tokenizer = j.at("tokenizer").get<std::string>();
  b.fp.corpus = j.at("corpus").get<std::string>();
  b.segment_docs = j.at("segment_docs").get<int64_t>();
  b.content_mmap = j.at("content_mmap").get<bool>();
  return b;
}

}  // namespace

std::string shard_bank_dir(const std::string& corpus_dir, int rank, int world) {
  return (std::filesystem::path(corpus_dir) / ("shard-" + std::to_string(rank) + "-of-" + std::to_string(world))).string();
}

struct ShardedBank::State {
  MsaModel* model = nullptr;
  std::string model_dir, model_fp;  // model_fp: fingerprint of model_dir, computed on first use
  bool reused = false;              // every rank loaded its sub-bank at the last index
  ShardGroup group;
  MemoryBank bank;                         // this rank's documents only
  std::vector<int64_t> mine;               // global id of every local document, ascending
  std::vector<int64_t> owner, doc_chunks;  // per global document
  std::vector<int64_t> local_of;           // global id -> local index, -1 elsewhere

  void send_header(std::initializer_list<int64_t> h) {
    auto t = torch::zeros({kHeader}, torch::kInt64);
    int64_t i = 0;
    for (auto v : h) t[i++] = v;
    group.broadcast(t);
  }

  // Whole stage-1 batches go to one rank, so every shard's pooled tensors equal the unsharded
  // bank's bit for bit; consecutive batches fill the ranks in turn, balanced by chunks.
  void partition(const std::vector<int64_t>& lengths) {
    const int64_t P = model->options().pooling_kernel_size, world = group.world();
    const int64_t n = static_cast<int64_t>(lengths.size());
    doc_chunks.assign(n, 0);
    owner.assign(n, 0);
    int64_t total = 0;
    for (int64_t d = 0; d < n; ++d) total += doc_chunks[d] = (lengths[d] + P - 1) / P;
    int64_t acc = 0;
    for (const auto& batch : model->stage1_batches(lengths)) {
      const int64_t r = std::min(world - 1, total > 0 ? acc * world / total : 0);
      for (size_t d : batch) {
        owner[d] = r;
        acc += doc_chunks[d];
      }
    }
    mine.clear();
    local_of.assign(n, -1);
    for (int64_t d = 0; d < n; ++d)
      if (owner[d] == group.rank()) {
        local_of[d] = static_cast<int64_t>(mine.size());
        mine.push_back(d);
      }
  }

  // Layout part of a sub-bank's fingerprint: which rank of how many, holding which documents.
  std::string layout() const {
    const std::string_view ids(reinterpret_cast<const char*>(mine.data()), mine.size() * sizeof(int64_t));
    return "rank " + std::to_string(group.rank()) + " of " + std::to_string(group.world()) + ", " +
           std::to_string(mine.size()) + " documents (ids " + hex64(fnv1a64(ids)) + ")";
  }

  // This rank's sub-bank: loaded when complete, else encoded (resuming its complete segments) as the
  // unsharded encode_bank does. Returns whether it was reused.
  bool open_sub_bank(const ShardBankOptions& b, const std::vector<std::vector<int64_t>>& local,
                     const std::vector<int64_t>& tpl) {
    // Hand-started workers bring their own copy of the model; a different one would encode other keys.
    if (model_fp.empty()) model_fp = model_fingerprint(model_dir);
    if (model_fp != b.fp.model)
      throw Error("model directory " + model_dir + " differs from rank 0's (fingerprint " + model_fp + ", rank 0 has " +
                  b.fp.model + ")");
    BankFingerprint fp = b.fp;
    fp.shard = layout();
    const std::string dir = shard_bank_dir(b.corpus_dir, group.rank(), group.world());
    if (std::filesystem::exists(std::filesystem::path(dir) / "manifest.json") && bank_info(dir).value("complete", false)) {
      bank = load_bank(dir, fp, b.content_mmap);
      return true;
    }
    bank = encode_bank(*model, local, tpl, fp, dir, b.segment_docs, {}, b.content_mmap);
    return false;
  }

  // Every rank's index outcome; failed ranks send their message to rank 0, which throws them all.
  void settle(int64_t status, const std::string& err) {
    const int me = group.rank();
    auto st = group.gather_status(status);
    std::string msg;
    for (int r = 0; r < group.world(); ++r) {
      if (st[r] != kFailed) continue;
      std::string m = err;
      if (r != 0 && me == r) {
        auto len = torch::full({1}, static_cast<int64_t>(m.size()), torch::kInt64);
        group.send(len, 0, kMessageTag);
        auto bytes = torch::from_blob(m.data(), {static_cast<int64_t>(m.size())}, torch::kUInt8);
        if (!m.empty()) group.send(bytes, 0, kMessageTag);
      } else if (r != 0 && me == 0) {
        auto len = torch::empty({1}, torch::kInt64);
        group.recv(len, r, kMessageTag);
        auto bytes = torch::empty({len.item<int64_t>()}, torch::kUInt8);
        if (bytes.numel() > 0) group.recv(bytes, r, kMessageTag);
        m.assign(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(bytes.numel()));
      }
      msg += (msg.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + ": " + m;
    }
    reused = std::all_of(st.begin(), st.end(), [](int64_t s) { return s == kReused; });
    // Workers stay up after a failed index (rank 0 may index another corpus); rank 0 reports it.
    if (me == 0 && !msg.empty()) throw Error("shards: indexing failed on " + msg);
  }

  // Runs on every rank after the kIndex header; rank 0 passes the documents and its bank options
  // (JSON), the others receive them.
  void index(const int64_t* h, const std::vector<std::vector<int64_t>>* docs, const std::vector<int64_t>* tpl,
             const std::string* bank_meta) {
    const int64_t n = h[1], total = h[2], T = h[3], M = h[7];
    // Options that decide partition and scores come from rank 0, so hand-started workers agree.
    auto& o = model->options();
    o.similarity = h[4] ? RoutingSimilarity::Cosine : RoutingSimilarity::ScaledDot;
    o.stage1_token_budget = h[5];
    o.score_tile_chunks = h[6];
    auto lengths = torch::empty({n}, torch::kInt64), tokens = torch::empty({total}, torch::kInt64),
         tpl_t = torch::empty({T}, torch::kInt64), meta_t = torch::empty({M}, torch::kUInt8);
    if (docs) {
      int64_t off = 0;
      for (int64_t d = 0; d < n; ++d) {
        const auto& doc = (*docs)[d];
        lengths[d] = static_cast<int64_t>(doc.size());
        std::memcpy(tokens.data_ptr<int64_t>() + off, doc.data(), doc.size() * sizeof(int64_t));
        off += static_cast<int64_t>(doc.size());
      }
      std::memcpy(tpl_t.data_ptr<int64_t>(), tpl->data(), tpl->size() * sizeof(int64_t));
      std::memcpy(meta_t.data_ptr<uint8_t>(), bank_meta->data(), bank_meta->size());
    }
    group.broadcast(lengths);
    if (total > 0) group.broadcast(tokens);
    if (T > 0) group.broadcast(tpl_t);
    if (M > 0) group.broadcast(meta_t);
    std::vector<int64_t> len(lengths.data_ptr<int64_t>(), lengths.data_ptr<int64_t>() + n);
    partition(len);
    std::vector<int64_t> starts(n + 1, 0);
    for (int64_t d = 0; d < n; ++d) starts[d + 1] = starts[d] + len[d];
    std::vector<std::vector<int64_t>> local;
    for (auto d : mine)
      local.emplace_back(tokens.data_ptr<int64_t>() + starts[d], tokens.data_ptr<int64_t>() + starts[d + 1]);
    std::vector<int64_t> tpl_ids(tpl_t.data_ptr<int64_t>(), tpl_t.data_ptr<int64_t>() + T);
    int64_t status = kEncoded;
    std::string err;
    try {
      const ShardBankOptions b = bank_options_from_json(
          nlohmann::json::parse(std::string(reinterpret_cast<const char*>(meta_t.data_ptr<uint8_t>()), M)));
      bank = MemoryBank();  // the previous corpus's shard goes before the next one is built
      if (b.corpus_dir.empty()) bank = model->encode_memory(local, tpl_ids);
      else if (open_sub_bank(b, local, tpl_ids)) status = kReused;
      if (b.key_dtype) use_scan_layout(bank, *model, *b.key_dtype);
    } catch (const std::exception& e) {
      err = e.what();
      if (group.rank() != 0) std::fprintf(stderr, "shard %d: indexing failed: %s\n", group.rank(), e.what());
      status = kFailed;
    }
    settle(status, err);
  }

  void route(const int64_t* h, torch::Tensor q, torch::Tensor mask, std::vector<std::vector<int64_t>>& ids,
             std::vector<std::vector<double>>& scores) {
    const int slot = static_cast<int>(h[1]);
    const int64_t B = h[2], k = h[6];
    if (!q.defined()) {
      q = torch::empty({B, h[3], h[4], h[5]}, torch::kFloat32);
      mask = torch::empty({B, h[4]}, torch::kUInt8);
    }
    group.broadcast(q);
    group.broadcast(mask);
    // The same scoring as unsharded prefill, over this rank's documents.
    auto local = mine.empty() ? torch::empty({B, 0}, torch::kFloat32)
                              : model->bank_document_scores(bank, slot, q, mask.to(torch::kBool));
    group.global_top_k(local, mine, static_cast<int>(k), ids, scores);
  }

  // Owners send the pooled K/V of their requested documents to rank 0 ([2, Hkv, chunks, D] each);
  // rank 0 gets every document's pair back.
  std::map<int64_t, std::pair<torch::Tensor, torch::Tensor>> fetch(const int64_t* h, torch::Tensor ids_t) {
    const int slot = static_cast<int>(h[1]);
    if (!ids_t.defined()) ids_t = torch::empty({h[2]}, torch::kInt64);
    group.broadcast(ids_t);
    const int world = group.world(), me = group.rank();
    std::vector<std::vector<int64_t>> of_rank(world);
    for (int64_t i = 0; i < ids_t.size(0); ++i) {
      const int64_t d = ids_t[i].item<int64_t>();
      if (d < 0 || d >= static_cast<int64_t>(owner.size())) throw Error("shards: fetch of an unknown document");
      of_rank[owner[d]].push_back(d);
    }
    auto local_pack = [&](const std::vector<int64_t>& ds) {
      std::vector<int64_t> chunks;
      for (auto d : ds)
        for (int64_t c = 0; c < doc_chunks[d]; ++c) chunks.push_back(bank.doc_first_chunk[local_of[d]] + c);
      return torch::stack({bank.gather_content(false, slot, chunks), bank.gather_content(true, slot, chunks)}).contiguous();
    };
    std::map<int64_t, std::pair<torch::Tensor, torch::Tensor>> out;
    if (me != 0) {
      if (!of_rank[me].empty()) {
        auto pack = local_pack(of_rank[me]);
        group.send(pack, 0, slot);
      }
      return out;
    }
    const auto& cfg = model->base().config();
    for (int r = 0; r < world; ++r) {
      if (of_rank[r].empty()) continue;
      torch::Tensor pack;
      if (r == 0) {
        pack = local_pack(of_rank[r]);
      } else {
        int64_t n = 0;
        for (auto d : of_rank[r]) n += doc_chunks[d];
        pack = torch::empty({2, cfg.num_key_value_heads, n, cfg.head_dim}, model->base().dtype());
        group.recv(pack, r, slot);
      }
      int64_t c0 = 0;
      for (auto d : of_rank[r]) {
        out[d] = {pack[0].narrow(1, c0, doc_chunks[d]), pack[1].narrow(1, c0, doc_chunks[d])};
        c0 += doc_chunks[d];
      }
    }
    return out;
  }
};

ShardedBank::ShardedBank(MsaModel& model, ShardOptions opt) : opt_(std::move(opt)), st_(std::make_unique<State>()) {
  if (opt_.world < 2) throw Error("shards: Memory Parallel needs at least 2 ranks");
  st_->model = &model;
  st_->model_dir = opt_.model_dir;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe").string();
  auto launch = [&](int port) {
    if (!opt_.launch) {
      std::fprintf(stderr, "shards: waiting for ranks 1..%d at %s:%d\n", opt_.world - 1, opt_.master_addr.c_str(), port);
      return;
    }
    for (int r = 1; r < opt_.world; ++r) {
      std::vector<std::string> args = {exe, "shard-worker", "--rank", std::to_string(r), "--world",
                                       std::to_string(opt_.world), "--master-addr", opt_.master_addr,
                                       "--master-port", std::to_string(port), "--model", opt_.model_dir,
                                       "--threads", std::to_string(opt_.threads),
                                       "--parent", std::to_string(::getpid())};
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      const pid_t pid = ::fork();
      if (pid < 0) throw Error(std::string("shards: cannot start a worker: ") + std::strerror(errno));
      if (pid == 0) {
        ::execv(exe.c_str(), argv.data());
        ::_exit(127);
      }
      pids_.push_back(pid);
    }
  };
  auto poll = [&] {
    for (pid_t pid : pids_) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid_t& p = *std::find(pids_.begin(), pids_.end(), pid);
        p = -1;  // reaped
        throw Error("shards: a worker process exited during startup (" +
                    std::string(WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                                  : "signal " + std::to_string(WTERMSIG(status))) +
                    "); see its messages above");
      }
    }
  };
  try {
    st_->group = ShardGroup::gloo_tcp(opt_.master_addr, opt_.master_port, 0, opt_.world,
                                      std::chrono::seconds(opt_.join_timeout_s), kOpTimeout, launch, poll);
  } catch (...) {
    stop_workers(false);
    throw;
  }
}

ShardedBank::~ShardedBank() { stop_workers(true); }

void ShardedBank::stop_workers(bool polite) {
  if (polite) {
    try {
      st_->send_header({kStop});
    } catch (const std::exception&) {
      // Workers gone already: nothing to tell; they are reaped below.
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(polite ? 10 : 0);
  for (pid_t& pid : pids_) {
    if (pid <= 0) continue;
    while (::waitpid(pid, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid = -1;
  }
}

// Sub-banks of another shard count (or a whole-corpus bank) are left alone; say why this run
// encodes anyway.
static void note_other_layouts(const std::string& corpus_dir, int world) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(shard_bank_dir(corpus_dir, 0, world)) / "manifest.json") || !fs::is_directory(corpus_dir))
    return;
  std::vector<std::string> other;
  if (fs::exists(fs::path(corpus_dir) / "manifest.json")) other.push_back("1");
  const std::string tail = "-of-";
  for (const auto& e : fs::directory_iterator(corpus_dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("shard-0-of-", 0) == 0) other.push_back(name.substr(name.find(tail) + tail.size()));
  }
  if (other.empty()) return;
  std::string list;
  for (const auto& w : other) list += (list.empty() ? "" : ", ") + w;
  std::fprintf(stderr, "shards: %s holds this corpus's bank for shards=%s, not %d; encoding sub-banks shard-R-of-%d\n",
               corpus_dir.c_str(), list.c_str(), world, world);
}

const MemoryBank& ShardedBank::index(const std::vector<std::vector<int64_t>>& docs, const std::vector<int64_t>& tpl,
                                     const ShardBankOptions& bank) {
  if (!bank.corpus_dir.empty()) note_other_layouts(bank.corpus_dir, opt_.world);
  int64_t total = 0;
  for (const auto& d : docs) total += static_cast<int64_t>(d.size());
  const auto& o = st_->model->options();
  const std::string meta = bank_options_json(bank).dump();
  const int64_t h[kHeader] = {kIndex, static_cast<int64_t>(docs.size()), total, static_cast<int64_t>(tpl.size()),
                              o.similarity == RoutingSimilarity::Cosine, o.stage1_token_budget, o.score_tile_chunks,
                              static_cast<int64_t>(meta.size())};
  st_->send_header({h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]});
  st_->index(h, &docs, &tpl, &meta);
  return st_->bank;
}

bool ShardedBank::reused() const { return st_->reused; }

std::vector<int64_t> ShardedBank::documents_per_rank() const {
  std::vector<int64_t> n(opt_.world, 0);
  for (auto r : st_->owner) ++n[r];
  return n;
}

int64_t ShardedBank::num_docs() const { return static_cast<int64_t>(st_->owner.size()); }

void ShardedBank::route(int slot, const torch::Tensor& q_router, const torch::Tensor& routing_mask, int k,
                        LayerRouting& out) {
  auto q = q_router.to(torch::kCPU, torch::kFloat32).contiguous();
  auto mask = routing_mask.to(torch::kCPU, torch::kUInt8).contiguous();
  const int64_t h[kHeader] = {kRoute, slot, q.size(0), q.size(1), q.size(2), q.size(3), k};
  st_->send_header({h[0], h[1], h[2], h[3], h[4], h[5], h[6]});
  st_->route(h, q, mask, out.doc_ids, out.scores);
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> ShardedBank::fetch(int slot,
                                                                        const std::vector<std::vector<int64_t>>& docs) {
  std::vector<int64_t> all;
  for (const auto& row : docs) all.insert(all.end(), row.begin(), row.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<std::pair<torch::Tensor, torch::Tensor>> out(docs.size());
  if (all.empty()) return out;
  const int64_t h[kHeader] = {kFetch, slot, static_cast<int64_t>(all.size())};
  st_->send_header({h[0], h[1], h[2]});
  auto got = st_->fetch(h, torch::tensor(all, torch::kInt64));
  for (size_t b = 0; b < docs.size(); ++b) {
    if (docs[b].empty()) continue;
    std::vector<torch::Tensor> ks, vs;
    for (auto d : docs[b]) {
      ks.push_back(got.at(d).first);
      vs.push_back(got.at(d).second);
    }
    out[b] = {torch::cat(ks, 1), torch::cat(vs, 1)};
  }
  return out;
}

int shard_worker_main(int argc, char** argv) {
  std::map<std::string, std::string> a = {{"--master-addr", "127.0.0.1"}, {"--threads", "2"}};
  for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  int rank = -1;
  try {
    for (const char* need : {"--rank", "--world", "--master-port", "--model"})
      if (!a.count(need)) throw Error(std::string("shard-worker: ") + need + " is required");
    if (a.count("--parent")) {
      // Exit with the backend process even if it is killed without telling us.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != static_cast<pid_t>(std::stol(a["--parent"]))) return 1;
    }
    rank = std::stoi(a["--rank"]);
    const int world = std::stoi(a["--world"]);
    set_compute_threads(std::stoi(a["--threads"]));
    MsaModel model = MsaModel::load(a["--model"]);
    ShardedBank::State s;
    s.model = &model;
    s.model_dir = a["--model"];
    s.group = ShardGroup::gloo_tcp(a["--master-addr"], std::stoi(a["--master-port"]), rank, world,
                                   std::chrono::seconds(60), kOpTimeout);
    while (true) {
      auto ht = torch::zeros({kHeader}, torch::kInt64);
      s.group.broadcast(ht);
      const int64_t* h = ht.data_ptr<int64_t>();
      std::vector<std::vector<int64_t>> ids;
      std::vector<std::vector<double>> scores;
      switch (h[0]) {
        case kStop: return 0;
        case kIndex: s.index(h, nullptr, nullptr, nullptr); break;
        case kRoute: s.route(h, {}, {}, ids, scores); break;
        case kFetch: s.fetch(h, {}); break;
        default: throw Error("shard-worker: unknown command " + std::to_string(h[0]));
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shard-worker %d: error: %s\n", rank, e.what());
    return 1;
  }
}

}  // namespace msabench
