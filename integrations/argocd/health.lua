-- Argo CD health check for prodready.io/ProductionService.
--
-- Reads the status conditions the operator writes (kstatus conventions): Ready, Reconciling,
-- Stalled. Install it in argocd-cm under
-- resource.customizations.health.prodready.io_ProductionService (see README.md here).
--
--   Healthy      Ready=True for the current generation
--   Progressing  no status yet, an older generation observed, Reconciling=True (a rollout),
--                or Ready Unknown
--   Degraded     Stalled=True (cannot succeed without a change: a missing Secret, a
--                name conflict, a rollout past its progress deadline), or Ready=False
--                without a rollout under way (a failing reconcile)
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  return reason
end

local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the prodready operator to reconcile"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = condition(status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

local reconciling = condition(status.conditions, "Reconciling")
local retrying = reconciling ~= nil and reconciling.reason == "RetryingAfterError"
if ready == nil or ready.status == "Unknown"
  or (reconciling ~= nil and reconciling.status == "True" and not retrying) then
  hs.status = "Progressing"
  if reconciling ~= nil and reconciling.status == "True" then
    hs.message = describe(reconciling)
  elseif ready ~= nil then
    hs.message = describe(ready)
  else
    hs.message = "Waiting for the Ready condition"
  end
  return hs
end

hs.status = "Degraded"
hs.message = describe(ready)
return hs
