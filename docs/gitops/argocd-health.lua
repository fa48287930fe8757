-- Argo CD health check for the cipherscale-operator's resources: CipherscaleUser,
-- CipherscaleGroupMembership, CipherscaleTenant and ClusterCipherscaleTenant (group
-- iam.cipherscale.com). The four kinds report the same kstatus conditions, so one script serves
-- them all; argocd-cm.yaml installs it for each kind.
--
--   Progressing  no status yet, or the operator has not yet observed the current generation
--                (status.observedGeneration < metadata.generation), or Reconciling=True
--   Degraded     Stalled=True: a person must act (invalid reference or tenant, conflict, owner
--                protected, unauthorized, a tenant's invalid Secret); the message says what
--   Healthy      Ready=True: the tenant matches the spec (a tenant object: its key works)
--   Progressing  otherwise, with the Ready condition's message (for example a paused object)

local function condition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.message
  if text == nil or text == "" then
    text = fallback
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. text
  end
  return text
end

hs = {}

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions
local reconciling = condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "The operator is applying changes")
  return hs
end

local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "The operator cannot proceed without help")
  return hs
end

local ready = condition(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "The tenant matches the spec")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Waiting for the Ready condition")
return hs
