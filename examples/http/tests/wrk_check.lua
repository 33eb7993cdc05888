-- wrk_check.lua: wrk script for http_test.sh wrk. Every response must be
-- "200" with exactly the body of GET / ("hello, world\n"); each thread
-- counts good and bad ones, and done() prints the totals with wrk's own
-- error counts on one line for the test to check:
--   checked: requests=N good=N bad=N connect=N read=N write=N status=N timeout=N first_bad=...
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    good, bad, first_bad = 0, 0, ""
end

function response(status, headers, body)
    if status == 200 and body == "hello, world\n" then
        good = good + 1
    else
        bad = bad + 1
        if first_bad == "" then
            first_bad = string.format("%d:%q", status, tostring(body):sub(1, 60))
        end
    end
end

function done(summary, latency, requests)
    local g, b, fb = 0, 0, ""
    for _, t in ipairs(threads) do
        g = g + t:get("good")
        b = b + t:get("bad")
        if fb == "" then fb = t:get("first_bad") end
    end
    local e = summary.errors
    io.write(string.format(
        "checked: requests=%d good=%d bad=%d connect=%d read=%d write=%d status=%d timeout=%d first_bad=%s\n",
        summary.requests, g, b, e.connect, e.read, e.write, e.status, e.timeout, fb))
end
