// Split GGUF files: gguf::Writer::write_split and gguf::File::open over the parts, on a
// real model; the command line (tachyon gguf-split) when the binary is built.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "support/shell.h"

using namespace tachyon;
namespace fs = std::filesystem;

namespace {

const std::string kModel = std::string(TACHYON_SHARED_DATA) + "/models/mini-qwen3-Q4_0.gguf";

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class Split : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("tachyon_split_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes kModel split under `limits` as dir/<name>-0000k-of-0000N.gguf.
  std::vector<std::string> split_model(const std::string& name, const gguf::SplitLimits& limits) {
    auto f = gguf::File::open(kModel);
    EXPECT_TRUE(f.is_ok()) << f.status().message();
    gguf::Writer w(f.value()->alignment());
    EXPECT_TRUE(w.add_file(*f.value()).is_ok());
    std::vector<std::string> paths;
    const Status st = w.write_split(path(name), limits, &paths);
    EXPECT_TRUE(st.is_ok()) << st.message();
    return paths;
  }

  // Writes a split of tiny F32 tensors with the given names, one tensor per part.
  std::vector<std::string> split_tiny(const std::string& name, const std::vector<std::string>& tensors) {
    gguf::Writer w;
    w.set_str("general.architecture", "tiny");
    const float data[4] = {1, 2, 3, 4};
    for (const auto& t : tensors) EXPECT_TRUE(w.add_tensor(t, DType::F32, {4}, data, sizeof data).is_ok());
    gguf::SplitLimits one;
    one.max_tensors = 1;
    std::vector<std::string> paths;
    EXPECT_TRUE(w.write_split(path(name), one, &paths).is_ok());
    return paths;
  }

  std::string open_error(const std::string& p) {
    auto f = gguf::File::open(p);
    EXPECT_FALSE(f.is_ok()) << p << " opened";
    return f.is_ok() ? std::string() : f.status().message();
  }

  fs::path dir_;
};

void expect_same_tensors(const gguf::File& a, const gguf::File& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const auto& x = a.tensors()[i];
    const auto& y = b.tensors()[i];
    ASSERT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type) << x.name;
    EXPECT_EQ(x.n_dims, y.n_dims) << x.name;
    for (int d = 0; d < 4; ++d) EXPECT_EQ(x.ne[d], y.ne[d]) << x.name;
    ASSERT_EQ(x.n_bytes, y.n_bytes) << x.name;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.n_bytes), 0) << x.name;
  }
}

}  // namespace

TEST(SplitNames, FollowLlamaCpp) {
  EXPECT_EQ(gguf::split_path("/m/x", 0, 3), "/m/x-00001-of-00003.gguf");
  EXPECT_EQ(gguf::split_path("x", 11, 12), "x-00012-of-00012.gguf");
  EXPECT_EQ(gguf::split_prefix("/m/x-00002-of-00003.gguf", 1, 3), "/m/x");
  EXPECT_EQ(gguf::split_prefix("/m/x-00002-of-00003.gguf", 0, 3), "");
  EXPECT_EQ(gguf::split_prefix("-00001-of-00003.gguf", 0, 3), "");  // an empty prefix is not a split name
  EXPECT_EQ(gguf::split_prefix("/m/x.gguf", 0, 3), "");
}

TEST_F(Split, RealModelRoundTrips) {
  gguf::SplitLimits limits;
  limits.max_tensors = 10;
  const auto paths = split_model("m", limits);
  auto orig = gguf::File::open(kModel);
  ASSERT_TRUE(orig.is_ok());
  const gguf::File& o = *orig.value();
  const size_t n_parts = (o.tensors().size() + 9) / 10;
  ASSERT_EQ(paths.size(), n_parts);
  ASSERT_GE(n_parts, 3u);
  EXPECT_EQ(paths[1], path("m") + "-00002-of-0000" + std::to_string(n_parts) + ".gguf");

  auto sp = gguf::File::open(paths[0]);
  ASSERT_TRUE(sp.is_ok()) << sp.status().message();
  const gguf::File& s = *sp.value();
  EXPECT_EQ(s.n_parts(), static_cast<int>(n_parts));
  EXPECT_EQ(s.part_path(2), paths[2]);
  uint64_t total = 0;
  for (const auto& p : paths) total += fs::file_size(p);
  EXPECT_EQ(s.file_size(), total);

  // Part 1 metadata: the original's, in order, then the three split keys.
  ASSERT_EQ(s.metadata().size(), o.metadata().size() + 3);
  for (size_t i = 0; i < o.metadata().size(); ++i) {
    EXPECT_EQ(s.metadata()[i].key, o.metadata()[i].key);
    EXPECT_EQ(s.metadata()[i].value.type, o.metadata()[i].value.type);
    EXPECT_EQ(s.metadata()[i].value.to_string(1u << 20), o.metadata()[i].value.to_string(1u << 20));
  }
  const auto& tail = s.metadata();
  EXPECT_EQ(tail[tail.size() - 3].key, "split.no");
  EXPECT_EQ(tail[tail.size() - 2].key, "split.tensors.count");
  EXPECT_EQ(tail[tail.size() - 1].key, "split.count");
  EXPECT_EQ(tail[tail.size() - 3].value.type, gguf::ValueType::UINT16);
  EXPECT_EQ(tail[tail.size() - 2].value.type, gguf::ValueType::INT32);
  EXPECT_EQ(tail[tail.size() - 1].value.type, gguf::ValueType::UINT16);
  EXPECT_EQ(s.get_uint("split.count").value(), n_parts);
  EXPECT_EQ(s.get_uint("split.tensors.count").value(), o.tensors().size());

  expect_same_tensors(o, s);
  for (size_t i = 0; i < s.tensors().size(); ++i) EXPECT_EQ(s.tensors()[i].part, i / 10);

  // The other parts hold the split keys only; parse() reads one part on its own.
  const auto bytes = read_all(paths[1]);
  auto p2 = gguf::File::parse(bytes.data(), bytes.size(), paths[1]);
  ASSERT_TRUE(p2.is_ok()) << p2.status().message();
  ASSERT_EQ(p2.value()->metadata().size(), 3u);
  EXPECT_EQ(p2.value()->get_uint("split.no").value(), 1u);
  EXPECT_EQ(p2.value()->tensors().size(), 10u);
  EXPECT_EQ(p2.value()->n_parts(), 1);
  const auto head = read_all(paths[0]);
  auto p1 = gguf::File::parse(head.data(), head.size(), paths[0]);
  ASSERT_TRUE(p1.is_ok()) << p1.status().message();
  EXPECT_EQ(p1.value()->tensors().size(), 10u);
}

TEST_F(Split, ByBytesAndMetadataOnlyFirstPart) {
  gguf::SplitLimits limits;
  limits.max_bytes = 600 * 1000;
  limits.no_tensor_first_split = true;
  const auto paths = split_model("b", limits);
  ASSERT_GE(paths.size(), 4u);
  auto orig = gguf::File::open(kModel);
  ASSERT_TRUE(orig.is_ok());
  auto sp = gguf::File::open(paths[0]);
  ASSERT_TRUE(sp.is_ok()) << sp.status().message();
  expect_same_tensors(*orig.value(), *sp.value());
  for (size_t k = 0; k < paths.size(); ++k) {
    const auto bytes = read_all(paths[k]);
    auto p = gguf::File::parse(bytes.data(), bytes.size(), paths[k]);
    ASSERT_TRUE(p.is_ok()) << p.status().message();
    if (k == 0) {
      EXPECT_EQ(p.value()->tensors().size(), 0u);
      continue;
    }
    uint64_t data = 0;
    for (const auto& t : p.value()->tensors()) data += (t.n_bytes + 31) / 32 * 32;
    ASSERT_GT(p.value()->tensors().size(), 0u);
    // Only a tensor larger than the limit on its own may pass it.
    if (p.value()->tensors().size() > 1) {
      EXPECT_LE(data, limits.max_bytes) << paths[k];
    }
  }
}

TEST_F(Split, MergeAndResplitGiveTheSameBytes) {
  gguf::SplitLimits limits;
  limits.max_tensors = 25;
  const auto paths = split_model("m", limits);
  ASSERT_GE(paths.size(), 2u);
  auto sp = gguf::File::open(paths[0]);
  ASSERT_TRUE(sp.is_ok()) << sp.status().message();

  // Merge as llama-gguf-split --merge does: split.count 0 marks the merged file.
  gguf::Writer m(sp.value()->alignment());
  ASSERT_TRUE(m.add_file(*sp.value()).is_ok());
  m.set_u16("split.count", 0);
  ASSERT_TRUE(m.write(path("merged.gguf")).is_ok());
  auto merged = gguf::File::open(path("merged.gguf"));
  ASSERT_TRUE(merged.is_ok()) << merged.status().message();
  EXPECT_EQ(merged.value()->n_parts(), 1);
  EXPECT_EQ(merged.value()->get_uint("split.count").value(), 0u);
  expect_same_tensors(*sp.value(), *merged.value());

  // Splitting the merged file drops its split keys and writes them anew.
  gguf::Writer r(merged.value()->alignment());
  ASSERT_TRUE(r.add_file(*merged.value()).is_ok());
  std::vector<std::string> again;
  ASSERT_TRUE(r.write_split(path("again"), limits, &again).is_ok());
  ASSERT_EQ(again.size(), paths.size());
  for (size_t k = 0; k < paths.size(); ++k) EXPECT_TRUE(read_all(paths[k]) == read_all(again[k])) << again[k];
}

TEST_F(Split, MissingPart) {
  const auto paths = split_model("m", {10, 0, false});
  fs::remove(paths[1]);
  const std::string e = open_error(paths[0]);
  EXPECT_NE(e.find(paths[1] + ": split part 2 of "), std::string::npos) << e;
  EXPECT_NE(e.find("missing (needed by " + paths[0] + ")"), std::string::npos) << e;
}

TEST_F(Split, TruncatedPart) {
  const auto paths = split_model("m", {10, 0, false});
  const std::string& last = paths.back();
  fs::resize_file(last, fs::file_size(last) - 100);
  const std::string e = open_error(paths[0]);
  EXPECT_NE(e.find(last + ": tensor '"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  EXPECT_NE(e.find("split part " + std::to_string(paths.size()) + " of " + std::to_string(paths.size())), std::string::npos)
      << e;
}

TEST_F(Split, PartOfAnotherSplit) {
  const auto paths = split_model("m", {10, 0, false});
  const auto other = split_model("o", {1000, 0, true});  // 2 parts: metadata, then all tensors
  ASSERT_EQ(other.size(), 2u);
  fs::copy_file(other[1], paths[1], fs::copy_options::overwrite_existing);
  std::string e = open_error(paths[0]);
  EXPECT_NE(e.find(paths[1] + ": split part 2 of " + std::to_string(paths.size()) + ": key 'split.count' is 2, expected " +
                   std::to_string(paths.size())),
            std::string::npos)
      << e;

  // A part of the same split in the wrong place.
  fs::copy_file(paths[2], paths[1], fs::copy_options::overwrite_existing);
  e = open_error(paths[0]);
  EXPECT_NE(e.find(paths[1] + ": split part 2 of " + std::to_string(paths.size()) + ": key 'split.no' is 2, expected 1"),
            std::string::npos)
      << e;
}

TEST_F(Split, OpeningAnotherPartDirectly) {
  const auto paths = split_model("m", {10, 0, false});
  const std::string e = open_error(paths[1]);
  EXPECT_NE(e.find(paths[1] + ": split part 2 of "), std::string::npos) << e;
  EXPECT_NE(e.find("open part 1 (" + paths[0] + ")"), std::string::npos) << e;
}

TEST_F(Split, PartOneMustBeNamedAsSuch) {
  const auto paths = split_model("m", {10, 0, false});
  fs::copy_file(paths[0], path("renamed.gguf"));
  const std::string e = open_error(path("renamed.gguf"));
  EXPECT_NE(e.find("does not end in -00001-of-0000"), std::string::npos) << e;
}

TEST_F(Split, DuplicateTensorAcrossParts) {
  const auto paths = split_tiny("d", {"a", "b", "c"});
  ASSERT_EQ(paths.size(), 3u);
  const auto other = split_tiny("e", {"x", "y", "b"});
  fs::copy_file(other[2], paths[2], fs::copy_options::overwrite_existing);
  const std::string e = open_error(paths[0]);
  EXPECT_NE(e.find(paths[2] + ": tensor 'b': duplicate, also in split part 2 (" + paths[1] + ")"), std::string::npos) << e;
}

TEST_F(Split, TensorCountMustMatch) {
  const auto paths = split_tiny("d", {"a", "b", "c"});
  {
    auto ok = gguf::File::open(paths[0]);
    ASSERT_TRUE(ok.is_ok()) << ok.status().message();
    EXPECT_EQ(ok.value()->tensors().size(), 3u);
  }
  // A hand-made part 3 with one tensor too many.
  gguf::Writer w;
  w.set_u16("split.no", 2);
  w.set_i32("split.tensors.count", 3);
  w.set_u16("split.count", 3);
  const float data[4] = {};
  ASSERT_TRUE(w.add_tensor("c", DType::F32, {4}, data, sizeof data).is_ok());
  ASSERT_TRUE(w.add_tensor("d", DType::F32, {4}, data, sizeof data).is_ok());
  ASSERT_TRUE(w.write(paths[2]).is_ok());
  const std::string e = open_error(paths[0]);
  EXPECT_NE(e.find(paths[0] + ": key 'split.tensors.count': 3 tensors expected, 4 found in the 3 parts"), std::string::npos)
      << e;
}

TEST_F(Split, WriterKeysAreWrittenOnce) {
  gguf::Writer w;
  w.set_u32("a", 1);
  w.set_str("b", "x");
  w.set_u32("a", 2);  // replaces and moves last
  ASSERT_TRUE(w.write(path("k.gguf")).is_ok());
  auto f = gguf::File::open(path("k.gguf"));
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  ASSERT_EQ(f.value()->metadata().size(), 2u);
  EXPECT_EQ(f.value()->metadata()[1].key, "a");
  EXPECT_EQ(f.value()->get_uint("a").value(), 2u);
}

TEST_F(Split, CommandLine) {
  if (!fs::exists(TACHYON_BIN)) GTEST_SKIP() << "tachyon binary not built: " << TACHYON_BIN;
  using test::run_shell;
  using test::shell_quote;
  const std::string bin = std::string(TACHYON_BIN) + " gguf-split ";
  auto run = [&](const std::string& args) { return run_shell(bin + args + " 2>/dev/null").exit_code; };
  EXPECT_EQ(run("--split-max-tensors 20 " + shell_quote(kModel) + " " + shell_quote(path("c"))), 0);
  auto orig = gguf::File::open(kModel);
  ASSERT_TRUE(orig.is_ok());
  const int n = static_cast<int>((orig.value()->tensors().size() + 19) / 20);
  const std::string part1 = gguf::split_path(path("c"), 0, n);
  auto sp = gguf::File::open(part1);
  ASSERT_TRUE(sp.is_ok()) << sp.status().message();
  expect_same_tensors(*orig.value(), *sp.value());

  EXPECT_EQ(run("--merge " + shell_quote(part1) + " " + shell_quote(path("merged.gguf"))), 0);
  auto merged = gguf::File::open(path("merged.gguf"));
  ASSERT_TRUE(merged.is_ok()) << merged.status().message();
  expect_same_tensors(*orig.value(), *merged.value());
  // llama-gguf-split refuses to overwrite a merge output too.
  EXPECT_EQ(run("--merge " + shell_quote(part1) + " " + shell_quote(path("merged.gguf"))), 2);

  EXPECT_EQ(run("--split-max-size 1M --dry-run " + shell_quote(kModel) + " " + shell_quote(path("d"))), 0);
  for (const auto& e : fs::directory_iterator(dir_)) EXPECT_NE(e.path().filename().string().rfind("d-", 0), 0u) << e.path();
  EXPECT_EQ(run("--split-max-size 10X " + shell_quote(kModel) + " " + shell_quote(path("x"))), 2);
  EXPECT_EQ(run("--split-max-size 0M " + shell_quote(kModel) + " " + shell_quote(path("x"))), 2);
  EXPECT_EQ(run("--split-max-tensors 0 " + shell_quote(kModel) + " " + shell_quote(path("x"))), 2);
  EXPECT_EQ(run("--split-max-tensors 5 --split-max-size 1M " + shell_quote(kModel) + " " + shell_quote(path("x"))), 2);
  EXPECT_EQ(run("--merge " + shell_quote(kModel) + " " + shell_quote(path("m2.gguf"))), 2);  // not a split
  EXPECT_EQ(run(shell_quote(path("nope.gguf")) + " " + shell_quote(path("x"))), 2);
  EXPECT_EQ(run("--merge " + shell_quote(gguf::split_path(path("c"), 1, n)) + " " + shell_quote(path("m3.gguf"))), 2);
}
