-- wrk script for bench/api_bench.py: authenticated P2P transfers, POST /v1/transfers.
--
-- wrk -t T ... -s api_bench.lua URL -- <subscribers file> <p2p|pin> <idempotency key prefix> <T>
--
-- The subscribers file has one line per subscriber: "<access token> <number> <pin>".
-- Each request takes the next sender (its token) and another subscriber as recipient, and
-- a new Idempotency-Key (prefix, thread, counter). p2p: 1 to 99 fen, under the
-- password-free amount; pin: 20,001 to 20,099 fen with the sender's PIN.
-- done() prints "WRK key=value ..." lines that api_bench.py parses.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local subs = {}
local n = 0
local pin_mode = false
local prefix = ""
local counter = 0
local offset = 0

-- Counters read by done() through thread:get (numbers and strings only).
created = 0      -- 201
other_2xx = 0    -- 200 (a replay: a key was reused) or 202 (recipient without a wallet)
non_2xx = 0
bad = ""         -- the first unexpected statuses, and the first body of one

function init(args)
  for line in io.lines(args[1]) do
    local token, number, pin = line:match("^(%S+) (%S+) (%S+)$")
    if token then
      subs[#subs + 1] = { auth = "Bearer " .. token, number = number, pin = pin }
    end
  end
  n = #subs
  if n < 2 then
    error("api_bench.lua: need at least 2 subscribers in " .. tostring(args[1]))
  end
  pin_mode = args[2] == "pin"
  prefix = args[3] .. "-" .. id .. "-"
  offset = math.floor(id * n / tonumber(args[4] or 1))  -- threads start at different senders
end

function request()
  counter = counter + 1
  local i = (offset + counter) % n
  local sender = subs[i + 1]
  local recipient = subs[(i + 1 + counter % (n - 1)) % n + 1]  -- never the sender
  local body
  if pin_mode then
    body = string.format('{"to":"%s","amount":{"amount":%d,"currency":"CNY"},"pin":"%s"}',
                         recipient.number, 20001 + counter % 99, sender.pin)
  else
    body = string.format('{"to":"%s","amount":{"amount":%d,"currency":"CNY"}}',
                         recipient.number, 1 + counter % 99)
  end
  return wrk.format("POST", "/v1/transfers", {
    ["Authorization"] = sender.auth,
    ["Idempotency-Key"] = prefix .. counter,
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
    return
  end
  if status >= 200 and status < 300 then
    other_2xx = other_2xx + 1
  else
    non_2xx = non_2xx + 1
  end
  if #bad < 1000 then
    bad = bad .. status .. " " .. (#bad == 0 and (body or ""):sub(1, 400) .. " | " or "")
  end
end

function done(summary, latency, requests)
  local c, o, x, b = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other_2xx")
    x = x + t:get("non_2xx")
    b = b .. t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d created=%d other_2xx=%d non_2xx=%d connect=%d read=%d write=%d timeout=%d "
    .. "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, c, o, x, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  io.write("WRK bad=" .. b:gsub("\n", " ") .. "\n")
end
