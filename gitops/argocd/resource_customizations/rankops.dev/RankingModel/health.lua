-- Argo CD health of a rankops RankingModel, from the status the operator writes.
-- Healthy: serving the spec's version, or a retrained candidate promoted automatically. Progressing: a canary rollout, a promotion settling,
-- a first deploy, or a spec the operator has not observed yet. Suspended: paused (manual
-- pause, analysis without data, autoRollback false). Degraded: rolled back, failed, or the
-- stable track not ready.
local hs = { status = "Progressing", message = "Waiting for the rankops operator" }
if obj.status == nil then
  return hs
end
local st = obj.status
local generation = obj.metadata.generation or 0
if (st.observedGeneration or 0) < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local message = st.message or ""
local phase = st.phase or ""
-- A spec the operator rejected leaves the phase as it was: the condition says it.
if st.conditions ~= nil then
  for _, c in ipairs(st.conditions) do
    if c.type == "Degraded" and c.status == "True" and c.reason == "InvalidSpec" then
      return { status = "Degraded", message = "InvalidSpec: " .. (c.message or message) }
    end
  end
end
if phase == "Healthy" then
  if st.canaryDraining then
    return { status = "Progressing", message = "Promoted " .. (st.stableVersion or "") .. ": canary draining" }
  end
  local retrain = st.retrain or {}
  if retrain.servedBy == "candidate" then
    -- An automatic promotion (spec.retrain.promotionGate.mode Automatic): healthy, and it says
    -- the served version is not spec.model's until Git names it.
    return { status = "Healthy", message = "Serving retrained candidate " .. (st.stableVersion or "")
      .. " (spec.model is " .. (retrain.specVersion or "") .. "): " .. message }
  end
  return { status = "Healthy", message = message }
elseif phase == "Progressing" or phase == "Pending" then
  local text = message
  if st.canaryVersion ~= nil then
    text = "Canary " .. st.canaryVersion .. " at weight " .. (st.canaryWeight or 0) .. ": " .. message
  end
  return { status = "Progressing", message = text }
elseif phase == "Paused" then
  local reason = st.pauseReason or "Paused"
  return { status = "Suspended", message = reason .. ": " .. message }
elseif phase == "RolledBack" or phase == "Failed" or phase == "Degraded" then
  return { status = "Degraded", message = phase .. ": " .. message }
end
return hs
