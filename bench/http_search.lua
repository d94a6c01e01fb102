-- http_search.lua — wrk script: POST a JPEG to /api/search as the raw request body.
--   wrk -s bench/http_search.lua http://127.0.0.1:PORT -- photo.jpg [QUERY]
-- QUERY (default "k=10") is appended to /api/search?. Every request sends the same bytes.
local function slurp(path)
   local f = assert(io.open(path, "rb"), "http_search.lua: cannot open " .. tostring(path))
   local data = f:read("*a")
   f:close()
   assert(#data > 0, "http_search.lua: " .. path .. " is empty")
   return data
end

function init(args)
   local path = args[1] or os.getenv("BENCH_JPEG")
   assert(path, "usage: wrk -s http_search.lua URL -- FILE.jpg [QUERY]")
   wrk.method = "POST"
   wrk.body = slurp(path)
   wrk.headers["Content-Type"] = "image/jpeg"
   wrk.path = "/api/search?" .. (args[2] or "k=10")
end
