-- wrk script: each request carries the next header value of the file named by the
-- HEADER_FILE environment variable, as the header named by HEADER_NAME (none when unset).
local name = os.getenv("HEADER_NAME")
if name == "" then name = nil end
local values = {}
local file = os.getenv("HEADER_FILE")
if file and file ~= "" then
  for line in io.lines(file) do
    if #line > 0 then values[#values + 1] = line end
  end
end
local i = 0
request = function()
  if name == nil or #values == 0 then
    return wrk.format("GET", nil, nil, nil)
  end
  i = i % #values + 1
  return wrk.format("GET", nil, { [name] = values[i] }, nil)
end
