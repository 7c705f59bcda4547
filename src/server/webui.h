// The built-in chat page served at `/` by `tachyon serve` (unless --no-webui).
//
// One self-contained HTML file (src/server/webui/index.html: inline CSS and JS, no CDN,
// no external fonts, works offline) embedded into the binary at build time:
// src/server/CMakeLists.txt turns it into a byte array in a generated .cpp in the build
// directory, re-generated whenever the HTML changes. The page is a plain client of the
// public API: it streams POST /v1/chat/completions (stream_options.include_usage) and
// reads the context length from GET /v1/models; it keeps its conversations in the
// browser's localStorage. Nothing here touches the engine.
//
// Cost: none at run time (static storage, no copy); the page is ~30 KB.
#pragma once
#include <string_view>

namespace tachyon::server {

// The page's bytes (UTF-8 HTML). Valid for the life of the program; never empty.
std::string_view webui_index_html();

}  // namespace tachyon::server
