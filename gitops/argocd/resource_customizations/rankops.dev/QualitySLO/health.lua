-- Argo CD health of a rankops QualitySLO, from status.state (the worst over its models).
-- Degraded is kept for Breached, the state the operator acts on (rollback or remediation);
-- AtRisk (below target, above the breach floor) stays Healthy with the state in the message.
local hs = { status = "Progressing", message = "Waiting for the first evaluation" }
if obj.status == nil then
  return hs
end
local st = obj.status
local generation = obj.metadata.generation or 0
if (st.observedGeneration or 0) < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local worst = {}
if st.models ~= nil then
  for _, m in ipairs(st.models) do
    if m.state == "Breached" or m.state == "AtRisk" then
      table.insert(worst, (m.model or "?") .. " " .. m.state)
    end
  end
end
local detail = table.concat(worst, ", ")
if st.state == "Breached" then
  return { status = "Degraded", message = "Breached: " .. detail }
elseif st.state == "AtRisk" then
  return { status = "Healthy", message = "AtRisk: " .. detail }
elseif st.state == "Met" then
  return { status = "Healthy", message = "All objectives met" }
elseif st.state == "NoData" then
  return { status = "Progressing", message = "No data yet for its objectives" }
end
return hs
