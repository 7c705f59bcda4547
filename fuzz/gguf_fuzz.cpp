// libFuzzer target: the GGUF parser must reject or accept any byte string without
// crashing, hanging or reading out of bounds; accepted files must have tensor views
// inside the buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "gguf/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = tachyon::gguf::File::parse(data, size, "fuzz.gguf");
  if (f.is_ok()) {
    for (const auto& t : f.value()->tensors()) {
      if (t.data < data || t.data + t.n_bytes > data + size) std::abort();
    }
    for (const auto& kv : f.value()->metadata()) (void)kv.value.to_string(4);
  }
  return 0;
}
