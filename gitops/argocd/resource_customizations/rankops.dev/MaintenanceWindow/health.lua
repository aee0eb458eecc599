-- Argo CD health of a rankops MaintenanceWindow. Suspended: spec.suspend. Degraded: the
-- latest run of some task failed, or condition Degraded is True. Progressing: a chore is
-- running, or the operator has not observed the spec yet. Healthy otherwise.
local hs = { status = "Progressing", message = "Waiting for the rankops operator" }
if obj.spec ~= nil and obj.spec.suspend then
  return { status = "Suspended", message = "Suspended (spec.suspend)" }
end
if obj.status == nil then
  return hs
end
local st = obj.status
local generation = obj.metadata.generation or 0
if (st.observedGeneration or 0) < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
if st.conditions ~= nil then
  for _, c in ipairs(st.conditions) do
    if c.type == "Degraded" and c.status == "True" then
      return { status = "Degraded", message = (c.reason or "Degraded") .. ": " .. (c.message or "") }
    end
  end
end
-- The latest run of each task (ISO-8601 UTC times compare as strings).
local latest = {}
if st.lastRuns ~= nil then
  for _, run in ipairs(st.lastRuns) do
    local key = (run.task or run.type or "?") .. "/" .. (run.model or "")
    local seen = latest[key]
    if seen == nil or (run.startTime or "") >= (seen.startTime or "") then
      latest[key] = run
    end
  end
end
local running = {}
for key, run in pairs(latest) do
  if run.result == "Failed" then
    return { status = "Degraded", message = key .. " failed (" .. (run.jobName or "") .. "): " .. (run.message or "") }
  elseif run.result == "Running" then
    table.insert(running, key)
  end
end
if #running > 0 then
  table.sort(running)
  return { status = "Progressing", message = "Running: " .. table.concat(running, ", ") }
end
local message = "Next window " .. (st.nextWindow or "unknown")
if st.active then
  message = "Window open until " .. (st.currentWindowEnd or "?")
end
return { status = "Healthy", message = message }
