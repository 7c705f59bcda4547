#include "server/webui.h"

#include <cstddef>

// Defined in the build directory's generated webui_index_html.cpp (see CMakeLists.txt).
extern "C" const unsigned char tachyon_webui_index_html[];
extern "C" const std::size_t tachyon_webui_index_html_size;

namespace tachyon::server {

std::string_view webui_index_html() {
  return {reinterpret_cast<const char*>(tachyon_webui_index_html), tachyon_webui_index_html_size};
}

}  // namespace tachyon::server
